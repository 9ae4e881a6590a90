"""Upstreams that misbehave, through the openai SDK: bytes that are not HTTP, JSON of the wrong shape,
unbelievable usage, refusals of the gateway's own credentials or model. Each becomes a clear error (502
before the first byte, an error chunk after), falls back to the next candidate and counts for the breaker;
the request's own faults (400, 413, 422) still reach the client as they are."""

import json
import math
import time

import httpx
import openai
import pytest

from routeyard.testing.raw_server import RawServer
from tests.gateway.conftest import POEMS, start_gateway

NOT_HTTP = b"\x00\x01\x02 SSH-2.0-definitely not http\r\n\r\n"
WORDS = ["one", " two", " three"]


def chunked_http(content_type, body):
    """An HTTP/1.1 200 head and one chunk of a chunked-encoded body."""
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
    return head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n"


# aiohttp's C parser leaves a body's reader waiting after a malformed chunk (its Python parser raises):
# then the gateway's own read deadline (the backend's timeout, 1 s here) ends the wait
CUT_BY_JUNK = "(sent an answer that is not valid HTTP|stalled mid-answer)"


@pytest.fixture(scope="module")
def junk():
    with RawServer(NOT_HTTP) as server:
        yield server


@pytest.fixture(scope="module")
def junk_mid_stream():
    chunks = [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in WORDS]
    events = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode()
    with RawServer(chunked_http("text/event-stream", events), b"zz\r\nnot a chunk size\r\n") as server:
        yield server


@pytest.fixture(scope="module")
def junk_mid_body():
    with RawServer(chunked_http("application/json", b'{"choices": ['), b"zz\r\nnot a chunk\r\n") as server:
        yield server


def usage_json(prompt_tokens):
    return '{"prompt_tokens": ' + prompt_tokens + ', "completion_tokens": 5, "total_tokens": 15}'


BAD_USAGE = {
    "usage-negative": usage_json("-100"),
    "usage-overflow": usage_json("1e999"),
    "usage-infinite": usage_json("Infinity"),
    "usage-nan": usage_json("NaN"),
    "usage-huge": usage_json("1" + "0" * 30),
    "usage-text": usage_json('"12"'),
    "usage-fraction": usage_json("2.5"),
    "usage-list": "[10, 5]",
}
MALFORMED = {
    "message-is-text": {"choices": [{"message": "str"}]},
    "choices-is-text": {"choices": "x"},
    "no-choices": {"id": "x"},
    "choice-is-text": {"choices": ["x"]},
    "content-is-number": {"choices": [{"message": {"role": "assistant", "content": 7}}]},
    "tool-calls-is-text": {"choices": [{"message": {"content": None, "tool_calls": "x"}}]},
    "not-an-object": [1, 2],
}


@pytest.fixture(scope="module")
def gateway(upstream, junk, junk_mid_stream, junk_mid_body, artifact, tmp_path_factory):
    v1 = upstream.url + "/v1"

    def backend(name, model, url=v1, **extra):
        return {"name": name, "base_url": url, "model": model, "output_usd_per_million": 1.0, **extra}

    def fallback(name, first):
        return {"name": name, "kind": "knn", "artifact": str(artifact), "backends": {"dear": first}}

    settings = {
        "backends": [
            backend("cheap", "echo"),
            backend("dear", "echo"),
            backend("junk", "echo", url=junk.url + "/v1"),
            backend("junk-mid-stream", "echo", url=junk_mid_stream.url + "/v1", timeout_seconds=1),
            backend("junk-mid-body", "echo", url=junk_mid_body.url + "/v1", timeout_seconds=1),
            backend("locked", "status-401"),
            backend("forbidden", "status-403"),
            backend("unknown-model", "status-404"),
            backend("request-timeout", "status-408", retries=2),
            backend("unprocessable", "status-422", retries=2),
            backend("too-large", "status-413", retries=2),
            backend("bad-first-chunk", 'chunk:{"choices": ["x"]}'),
            backend("bad-late-chunk", 'late-chunk:{"choices": [{"delta": "x"}]}'),
            backend("error-event", 'late-chunk:{"error": {"message": "overloaded"}}'),
            *[backend(name, "reply:" + json.dumps(body)) for name, body in MALFORMED.items()],
            *[backend(name, "usage:" + raw) for name, raw in BAD_USAGE.items()],
        ],
        "routers": [
            fallback("fallback-junk", "junk"),
            fallback("fallback-locked", "locked"),
            fallback("fallback-unknown-model", "unknown-model"),
            fallback("fallback-malformed", "message-is-text"),
            fallback("fallback-bad-first-chunk", "bad-first-chunk"),
            {
                "name": "cascade",
                "kind": "cascade",
                "artifact": str(artifact),
                "judge": {"kind": "heuristics"},
            },
        ],
        "embedder": "hashing",
        "breaker_failures": 100,
    }
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(settings, tmp_path_factory.mktemp("upstream-failures"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def ask(gateway, model, text="hello there", **kwargs):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )
    return raw.parse(), raw.headers


def stream(gateway, model, text="hello there", **kwargs):
    return client(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True, **kwargs
    )


def calls(upstream, model):
    return httpx.get(upstream.url + "/calls").json().get(model, 0)


# bytes that are not HTTP


@pytest.mark.parametrize("streamed", [False, True])
def test_an_upstream_answering_bytes_that_are_not_http_is_a_502(gateway, junk, streamed):
    before = junk.connections
    with pytest.raises(openai.InternalServerError) as caught:
        if streamed:
            list(stream(gateway, "junk"))
        else:
            ask(gateway, "junk")
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["type"] == "upstream_error"
    assert "backend junk" in caught.value.message and "not valid HTTP" in caught.value.message
    assert junk.connections == before + 1  # an answer, however bad, is not retried


@pytest.mark.parametrize("streamed", [False, True])
def test_a_router_falls_back_past_an_upstream_that_does_not_speak_http(gateway, streamed):
    if streamed:
        chunks = list(stream(gateway, "fallback-junk", POEMS[0]))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: " + POEMS[0]
        routing = chunks[-1].model_extra["routing"]
    else:
        reply, _ = ask(gateway, "fallback-junk", POEMS[0])
        assert reply.choices[0].message.content == "echo: " + POEMS[0]
        routing = reply.model_extra["routing"]
    assert [(a["backend"], a["status"]) for a in routing["attempts"]] == [
        ("junk", "upstream_error"),
        ("cheap", "ok"),
    ]


def test_bytes_that_are_not_http_mid_stream_end_it_with_an_error_chunk(gateway):
    received = []
    with pytest.raises(openai.APIError, match="backend junk-mid-stream " + CUT_BY_JUNK):
        for chunk in stream(gateway, "junk-mid-stream"):
            received.append(chunk.choices[0].delta.content)
    assert received and "".join(received).startswith("one")


def test_bytes_that_are_not_http_mid_body_fail_the_call(gateway):
    with pytest.raises(openai.InternalServerError, match="backend junk-mid-body " + CUT_BY_JUNK) as caught:
        ask(gateway, "junk-mid-body")
    assert caught.value.status_code in (502, 504)


# JSON of the wrong shape


@pytest.mark.parametrize("backend", sorted(MALFORMED))
def test_a_completion_of_the_wrong_shape_is_a_502(gateway, backend):
    with pytest.raises(openai.InternalServerError) as caught:
        ask(gateway, backend)
    assert caught.value.status_code == 502
    assert (
        caught.value.response.json()["error"]["message"]
        == f"backend {backend} returned a malformed completion"
    )


def test_a_router_falls_back_past_a_completion_of_the_wrong_shape(gateway):
    reply, headers = ask(gateway, "fallback-malformed", POEMS[1])
    assert headers["x-routeyard-backend"] == "cheap"
    attempts = reply.model_extra["routing"]["attempts"]
    assert [a["backend"] for a in attempts] == ["message-is-text", "cheap"]


def test_a_malformed_first_chunk_fails_before_the_first_byte_and_falls_back(gateway):
    with pytest.raises(openai.InternalServerError) as caught:
        list(stream(gateway, "bad-first-chunk"))
    assert caught.value.status_code == 502
    assert "malformed stream chunk" in caught.value.message
    chunks = list(stream(gateway, "fallback-bad-first-chunk", POEMS[2]))
    assert chunks[-1].model_extra["routing"]["backend"] == "cheap"


@pytest.mark.parametrize(
    ("backend", "message"),
    [("bad-late-chunk", "malformed stream chunk"), ("error-event", "sent an error mid-stream")],
)
def test_a_malformed_chunk_or_an_error_event_mid_stream_ends_it_with_an_error_chunk(
    gateway, backend, message
):
    received = []
    with pytest.raises(openai.APIError, match=message):
        for chunk in stream(gateway, backend):
            received.append(chunk.choices[0].delta.content)
    assert "".join(received).startswith("echo:")


@pytest.mark.parametrize("backend", sorted(BAD_USAGE))
@pytest.mark.parametrize("streamed", [False, True])
def test_unbelievable_upstream_usage_is_ignored_and_estimated(gateway, backend, streamed):
    if streamed:
        chunks = list(stream(gateway, backend, stream_options={"include_usage": True}))
        usage, routing = chunks[-1].usage, chunks[-1].model_extra["routing"]
    else:
        reply, _ = ask(gateway, backend)
        assert reply.choices[0].message.content == "echo: hello there"
        usage, routing = reply.usage, reply.model_extra["routing"]
    assert routing["cost_estimated"] is True and usage.model_extra["estimated"] is True
    assert isinstance(usage.prompt_tokens, int) and 0 < usage.prompt_tokens < 100
    assert 0 < usage.completion_tokens < 100
    assert math.isfinite(routing["cost_usd"]) and routing["cost_usd"] > 0
    assert httpx.get(gateway.url + "/metrics").status_code == 200


# the gateway's own credentials and model


@pytest.mark.parametrize(
    ("backend", "code", "what"),
    [
        ("locked", "upstream_credentials_rejected", "credentials"),
        ("forbidden", "upstream_credentials_rejected", "credentials"),
        ("unknown-model", "upstream_model_not_found", "model"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_upstream_401_403_404_are_the_gateways_problem_not_the_clients(
    gateway, upstream, backend, code, what, streamed
):
    model = {"locked": "status-401", "forbidden": "status-403", "unknown-model": "status-404"}[backend]
    before = calls(upstream, model)
    with pytest.raises(openai.InternalServerError) as caught:  # not AuthenticationError, not NotFoundError
        list(stream(gateway, backend)) if streamed else ask(gateway, backend)
    assert caught.value.status_code == 502
    assert (
        caught.value.response.json()["error"]["code"] == code
        and caught.value.response.json()["error"]["type"] == "upstream_error"
    )
    assert f"backend {backend}" in caught.value.message and what in caught.value.message
    assert "key" not in caught.value.message.lower()
    assert calls(upstream, model) == before + 1  # the same answer again: no retry


@pytest.mark.parametrize(
    ("router", "first", "code"),
    [
        ("fallback-locked", "locked", "upstream_credentials_rejected"),
        ("fallback-unknown-model", "unknown-model", "upstream_model_not_found"),
    ],
)
def test_a_router_falls_back_past_a_backend_refusing_the_gateways_credentials(gateway, router, first, code):
    reply, headers = ask(gateway, router, POEMS[3])
    assert headers["x-routeyard-backend"] == "cheap"
    attempts = reply.model_extra["routing"]["attempts"]
    assert [(a["backend"], a["status"]) for a in attempts] == [(first, code), ("cheap", "ok")]


def test_an_upstream_408_is_retried_like_a_429(gateway, upstream):
    before = calls(upstream, "status-408")
    with pytest.raises(openai.InternalServerError) as caught:
        ask(gateway, "request-timeout")
    assert caught.value.status_code == 502
    assert calls(upstream, "status-408") == before + 3  # retries: 2


@pytest.mark.parametrize(
    ("backend", "model", "status"),
    [("unprocessable", "status-422", 422), ("too-large", "status-413", 413)],
)
def test_the_requests_own_faults_reach_the_client_unretried(gateway, upstream, backend, model, status):
    before = calls(upstream, model)
    with pytest.raises(openai.APIStatusError) as caught:
        ask(gateway, backend)
    assert caught.value.status_code == status
    assert caught.value.response.json()["error"]["code"] == "upstream_rejected"
    assert calls(upstream, model) == before + 1


def test_refused_credentials_and_junk_count_for_the_circuit_breaker(
    upstream, junk, artifact, tmp_path, monkeypatch
):
    settings = {
        "backends": [
            {"name": "locked", "base_url": upstream.url + "/v1", "model": "status-401"},
            {"name": "junk", "base_url": junk.url + "/v1", "model": "echo"},
        ],
        "routers": [{"name": "router-fixed", "kind": "fixed", "backend": "locked"}],
        "breaker_failures": 2,
        "breaker_cooldown_seconds": 60,
    }
    _app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        for backend, count in (
            ("locked", lambda: calls(upstream, "status-401")),
            ("junk", lambda: junk.connections),
        ):
            for _ in range(2):
                with pytest.raises(openai.InternalServerError):
                    ask(server, backend)
            after_two = count()
            with pytest.raises(openai.APIStatusError) as caught:
                ask(server, backend)
            assert caught.value.status_code == 503 and "cooling down" in caught.value.message
            assert count() == after_two
    finally:
        server.__exit__(None, None, None)


# a cascade's calls are whole: a stream's options must not reach them


def test_a_cascade_streams_to_a_client_that_asked_for_usage(gateway, upstream):
    chunks = list(stream(gateway, "cascade", "a sum", stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a sum"
    routing = chunks[-1].model_extra["routing"]
    assert [(a["backend"], a["status"]) for a in routing["attempts"]] == [("cheap", "ok")]
    assert chunks[-1].usage is not None


def test_a_recovering_backend_gets_one_trial_after_each_cooldown(upstream, tmp_path, monkeypatch):
    settings = {
        "backends": [
            {"name": "recovering", "base_url": upstream.url + "/v1", "model": "flaky-3", "retries": 0}
        ],
        "routers": [{"name": "router-fixed", "kind": "fixed", "backend": "recovering"}],
        "breaker_failures": 2,
        "breaker_cooldown_seconds": 1.0,
    }
    _app, server = start_gateway(settings, tmp_path, monkeypatch)

    def status():
        try:
            ask(server, "recovering")
        except openai.APIStatusError as error:
            return error.status_code
        return 200

    try:
        assert [status(), status(), status()] == [502, 502, 503]  # opened after two failures
        assert calls(upstream, "flaky-3") == 2
        time.sleep(1.1)
        assert [status(), status()] == [502, 503]  # the trial failed: open again
        time.sleep(1.1)
        assert [status(), status()] == [200, 200]  # the trial succeeded: closed
        assert calls(upstream, "flaky-3") == 5
    finally:
        server.__exit__(None, None, None)
