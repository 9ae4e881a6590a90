"""/metrics after known traffic, read with the Prometheus text parser; /v1/feedback: kept, validated,
size-limited, and accepted only from the key that made the request (or the admin key)."""

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeyard.gateway.operations import MAX_FEEDBACK_BYTES
from tests.gateway.conftest import MATH, POEMS, gateway_settings, memory_log, start_gateway


@pytest.fixture(scope="module")
def gateway_app_and_server(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(
        gateway_settings(upstream.url, artifact), tmp_path_factory.mktemp("ops"), monkeypatch
    )
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def samples(url):
    """{(name, frozenset(labels)): value} of every sample /metrics exposes."""
    text = httpx.get(url + "/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_known_traffic(gateway_app_and_server):
    _, server = gateway_app_and_server
    before = samples(server.url)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for text in ("one", "two", "three"):
        client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": text}])
    routed = [
        client.chat.completions.create(model="router-knn", messages=[{"role": "user", "content": t}])
        for t in (MATH[2], POEMS[2])
    ]
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    list(
        client.chat.completions.create(
            model="cheap", messages=[{"role": "user", "content": "s"}], stream=True
        )
    )
    after = samples(server.url)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("routeyard_requests_total", router="direct", backend="cheap", status="200") == 4
    assert grew("routeyard_requests_total", router="router-knn", backend="cheap", status="200") == 1
    assert grew("routeyard_requests_total", router="router-knn", backend="dear", status="200") == 1
    # named a backend directly, and no backend answered
    assert grew("routeyard_requests_total", router="direct", backend="none", status="502") == 1
    streamed_cost = (10 * 0.5 + 2 * 1.0) / 1e6  # "echo: s" streams 2 words
    cheap_cost = (
        3 * (10 * 0.5 + 5 * 1.0) / 1e6 + streamed_cost + (routed[0].model_extra or {})["routing"]["cost_usd"]
    )
    assert grew("routeyard_cost_usd_total", backend="cheap") == pytest.approx(cheap_cost)
    assert grew("routeyard_cost_usd_total", backend="dear") == pytest.approx(
        (routed[1].model_extra or {})["routing"]["cost_usd"]
    )
    assert grew("routeyard_tokens_total", backend="cheap", kind="prompt") >= 40
    assert grew("routeyard_routing_seconds_count", router="router-knn") == 2
    assert grew("routeyard_request_seconds_count", router="direct") == 5
    assert grew("routeyard_time_to_first_token_seconds_count", backend="cheap") == 1
    assert grew("routeyard_fallbacks_total", backend="broken") == 1  # one failed call (its retries inside)
    assert grew("routeyard_saved_usd_total", router="router-knn") > 0  # the sum went to the cheap model
    assert value(after, "routeyard_circuit_breaker_open", backend="cheap") == 0.0
    assert ("routeyard_usage_log_buffered", frozenset()) in after


def request_id_of(url, api_key="unused"):
    """The id of a fresh completion made with ``api_key``."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0)
    reply = client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "rate me"}])
    assert reply.model_extra is not None
    return reply.model_extra["routing"]["request_id"]


def test_feedback_is_accepted_and_kept(gateway_app_and_server):
    app, server = gateway_app_and_server
    request_id = request_id_of(server.url)
    response = httpx.post(server.url + "/v1/feedback", json={"request_id": request_id, "quality": 0.75})
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert memory_log(app).feedbacks[request_id] == 0.75
    assert value(samples(server.url), "routeyard_feedback_total") >= 1


def test_feedback_for_an_id_the_gateway_never_issued_is_a_404(gateway_app_and_server):
    app, server = gateway_app_and_server
    response = httpx.post(server.url + "/v1/feedback", json={"request_id": "req_" + "a" * 32, "quality": 1.0})
    assert response.status_code == 404 and response.json()["error"]["code"] == "request_not_found"
    assert "req_" + "a" * 32 not in memory_log(app).feedbacks


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"request_id": "req_" + "a" * 32, "quality": 1.5}, "quality"),
        ({"request_id": "nope", "quality": 0.5}, "request_id"),
        ({"request_id": "req_" + "a" * 32}, "quality"),
    ],
)
def test_bad_feedback_is_an_openai_shaped_400(gateway_app_and_server, body, param):
    _, server = gateway_app_and_server
    response = httpx.post(server.url + "/v1/feedback", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_feedback_over_the_size_limit_is_an_openai_shaped_413(gateway_app_and_server):
    app, server = gateway_app_and_server
    padded = {"request_id": "req_" + "b" * 32, "quality": 0.5, "pad": "x" * MAX_FEEDBACK_BYTES}
    declared = httpx.post(server.url + "/v1/feedback", json=padded)

    def chunks():  # no content-length: the limit holds while reading
        yield b'{"request_id": "req_' + b"b" * 32 + b'", "pad": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    streamed = httpx.post(server.url + "/v1/feedback", content=chunks())
    for response in (declared, streamed):
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "request_too_large"
    assert "req_" + "b" * 32 not in memory_log(app).feedbacks


def test_feedback_only_from_the_key_that_made_the_request_or_the_admin(
    upstream, artifact, tmp_path, monkeypatch
):
    monkeypatch.setenv("ROUTEYARD_TEST_CLIENT_KEYS", "sk-client-a,sk-client-b")
    monkeypatch.setenv("ROUTEYARD_TEST_ADMIN_KEY", "sk-admin-ops")
    settings = gateway_settings(
        upstream.url,
        artifact,
        client_keys_env="ROUTEYARD_TEST_CLIENT_KEYS",
        admin_key_env="ROUTEYARD_TEST_ADMIN_KEY",
    )
    app, server = start_gateway(settings, tmp_path, monkeypatch)

    def rate(request_id, key, quality):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        body = {"request_id": request_id, "quality": quality}
        return httpx.post(server.url + "/v1/feedback", json=body, headers=headers)

    try:
        mine, theirs = request_id_of(server.url, "sk-client-a"), request_id_of(server.url, "sk-client-b")
        anonymous, wrong = rate(mine, None, 0.1), rate(mine, "sk-no", 0.1)
        foreign = rate(theirs, "sk-client-a", 0.0)  # a's key rating b's request
        own = rate(mine, "sk-client-a", 0.9)
        by_admin = rate(theirs, "sk-admin-ops", 0.4)
    finally:
        server.__exit__(None, None, None)
    for refused in (anonymous, wrong):
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert foreign.status_code == 404
    assert own.status_code == 202 and by_admin.status_code == 202
    log = memory_log(app)
    assert dict(log.feedbacks) == {mine: 0.9, theirs: 0.4}  # nothing from the refused ones
    assert log.raters[theirs] == "admin" and str(log.raters[mine]).startswith("key_")
