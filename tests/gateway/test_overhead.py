"""The gateway's own time, made visible: ``x-routeyard-overhead-ms`` on every reply and error, and the
``routeyard_overhead_seconds{router}`` histogram, through the openai SDK against the mock upstream.

The slow upstream is the mock's ``hang`` behind a 0.5 s backend timeout: a request that waits it out and
falls back spends over half a second upstream, which the overhead must not count.
"""

import math

import openai
import pytest

from routeyard.gateway.runtime import runtime_of
from tests.gateway.conftest import MATH, POEMS, gateway_settings, start_gateway

HEADER = "x-routeyard-overhead-ms"
GOOD = "the right answer [good]"
SLOW_SECONDS = 0.5  # the ``hanging`` backend's timeout in conftest's settings


@pytest.fixture(scope="module")
def gateway(upstream, artifact, tmp_path_factory):
    settings = gateway_settings(upstream.url, artifact)
    v1 = upstream.url + "/v1"
    settings["backends"] += [
        {"name": "grader", "base_url": v1, "model": "grader", "api_key_env": "UPSTREAM_KEY"},
        {"name": "right", "base_url": v1, "model": f"says:{GOOD}", "api_key_env": "UPSTREAM_KEY"},
    ]
    cascade = {"kind": "cascade", "artifact": str(artifact), "judge": {"kind": "llm", "backend": "grader"}}
    settings["routers"] += [
        {"name": "router-slow", "kind": "knn", "artifact": str(artifact), "backends": {"dear": "hanging"}},
        {**cascade, "name": "cascade-llm", "backends": {"cheap": "hanging", "dear": "right"}},
        {**cascade, "name": "cascade-local", "backends": {"cheap": "cheap", "dear": "right"}}
        | {"judge": {"kind": "heuristics"}},
    ]
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(settings, tmp_path_factory.mktemp("overhead"), monkeypatch)
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def overhead_ms(headers):
    """The overhead header's value: present, a finite float, not negative."""
    value = float(headers[HEADER])
    assert math.isfinite(value) and value >= 0.0
    return value


def ask(server, model, text, **kwargs):
    raw = client(server).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )
    return raw.parse(), raw.headers


def ask_streamed(server, model, text):
    """The streamed reply's text and headers, read to its end."""
    messages = [{"role": "user", "content": text}]
    with client(server).chat.completions.with_streaming_response.create(
        model=model, messages=messages, stream=True
    ) as response:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
        return text, response.headers


def histogram(app, router, sample):
    value = runtime_of(app).metrics.registry.get_sample_value(
        f"routeyard_overhead_seconds_{sample}", {"router": router}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("model", "text", "backend"),
    [
        ("cheap", "hello", "cheap"),  # direct
        ("router-knn", MATH[0], "cheap"),  # routed
        ("router-knn", POEMS[0], "dear"),
        ("cascade-local", MATH[1], "cheap"),  # a walk, judged locally (accepted)
    ],
)
def test_every_whole_and_streamed_reply_carries_its_overhead(gateway, model, text, backend):
    _, server = gateway
    reply, headers = ask(server, model, text)
    assert reply.model == backend
    overhead_ms(headers)
    streamed, headers = ask_streamed(server, model, text)
    assert streamed
    overhead_ms(headers)


def test_an_error_the_lifecycle_raises_carries_its_overhead(gateway):
    _, server = gateway
    with pytest.raises(openai.InternalServerError) as error:  # the upstream timed out: 504
        ask(server, "hanging", "anyone there?")
    assert error.value.status_code == 504
    assert overhead_ms(error.value.response.headers) < 100.0  # the 0.5 s waited upstream is not counted
    with pytest.raises(openai.BadRequestError) as refused:  # refused by the lifecycle before any call
        ask(server, "cheap", "hello", extra_body={"routing": {"exclude": ["cheap"]}})
    overhead_ms(refused.value.response.headers)


def test_upstream_waiting_is_not_overhead(gateway):
    """A routed request whose first choice hangs until its timeout and falls back: over 0.5 s upstream,
    yet the gateway's own time stays far below it — whole, streamed (header and histogram) and in a
    cascade whose LLM judge grades upstream."""
    app, server = gateway
    reply, headers = ask(server, "router-slow", POEMS[1])
    attempts = reply.model_extra["routing"]["attempts"]
    assert [a["backend"] for a in attempts] == ["hanging", "cheap"]
    assert attempts[0]["seconds"] >= SLOW_SECONDS * 0.9
    assert overhead_ms(headers) < 100.0

    count, total = histogram(app, "router-slow", "count"), histogram(app, "router-slow", "sum")
    text, headers = ask_streamed(server, "router-slow", POEMS[2])
    assert text.startswith("echo:")
    assert overhead_ms(headers) < 100.0  # up to the first byte
    assert histogram(app, "router-slow", "count") == count + 1
    assert histogram(app, "router-slow", "sum") - total < 0.1  # the whole stream

    reply, headers = ask(server, "cascade-llm", MATH[2])
    statuses = [(a["backend"], a["status"]) for a in reply.model_extra["routing"]["attempts"]]
    assert statuses[0][0] == "hanging" and ("grader", "judge") in statuses
    assert overhead_ms(headers) < 100.0


def test_the_histogram_counts_requests_per_router(gateway):
    app, server = gateway
    routers = {"router-knn": 3, "cascade-local": 2, "direct": 2}
    before = {router: histogram(app, router, "count") for router in routers}
    for i in range(3):
        ask(server, "router-knn", MATH[10 + i])
    ask(server, "cascade-local", MATH[13])
    ask_streamed(server, "cascade-local", MATH[14])
    ask(server, "cheap", "one")
    ask_streamed(server, "cheap", "two")
    for router, n in routers.items():
        assert histogram(app, router, "count") == before[router] + n
    buckets = runtime_of(app).metrics.registry.get_sample_value(
        "routeyard_overhead_seconds_bucket", {"router": "direct", "le": "0.0005"}
    )
    assert buckets is not None  # finer than a millisecond below 10 ms
