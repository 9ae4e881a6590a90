"""Upstreams that would hold the gateway forever, through the openai SDK over real HTTP: one trickling a
byte now and then (the read timeout never fires), one sending more than any answer needs, one that
accepts and never answers. Each call is ended at its backend's deadline (504) or size limit (502, not
retried, its connection freed) and counts as that backend's failure; a hung backend holds only its own
connections, so the others answer as fast as before and their breakers stay closed."""

import concurrent.futures
import json
import time

import httpx
import openai
import pytest

from routeyard.gateway.backends.kinds.openai import OpenAiBackend
from routeyard.gateway.runtime import runtime_of
from routeyard.testing.raw_server import RawServer
from tests.gateway.conftest import POEMS, start_gateway

TRICKLE = "trickle:0.2"  # a space every 0.2 s: well inside the 1 s read timeout below
DEADLINE = 1.5
HUNG_DEADLINE = 6.0  # long enough for the hung backend's requests to pile up on a loaded machine
HUNG_MAX_CONNECTIONS = 4
STUCK_REQUESTS = 20


def sse_event(content):
    return f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': content}}]})}"


def chunk_of(data):
    """``data`` as one chunk of a chunked-encoded body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# SSE lines ending in \r\n, \n and a lone \r, cut mid-line and between the \r and \n of a line end
SPLIT_SSE = (
    sse_event("one") + "\r\n\r\n" + sse_event(" two") + "\r\r" + sse_event(" three") + "\n\n"
).encode()
SPLIT_AT = (len(sse_event("one")) + 1, len(sse_event("one")) + 12)


@pytest.fixture(scope="module")
def split_lines():
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    first, second = SPLIT_AT
    parts = (
        head + chunk_of(SPLIT_SSE[:first]),
        chunk_of(SPLIT_SSE[first:second]),
        chunk_of(SPLIT_SSE[second:] + b"data: [DONE]\n\n") + b"0\r\n\r\n",
    )
    with RawServer(*parts, pause=0.1) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream, split_lines, artifact, tmp_path_factory):
    v1 = upstream.url + "/v1"

    def backend(name, model, url=v1, **extra):
        return {"name": name, "base_url": url, "model": model, **extra}

    settings = {
        "backends": [
            backend("cheap", "echo"),
            backend("dear", "echo"),
            backend("trickler", TRICKLE, timeout_seconds=1, total_timeout_seconds=DEADLINE),
            # one connection each: a response whose connection is not freed would block the next call
            backend("big-body", "big:1000000", max_response_bytes=10_000, max_connections=1, **_bounded()),
            backend("flood", "flood", max_response_bytes=100_000, max_connections=1, **_bounded()),
            backend("long-line", "big:5000", max_sse_line_bytes=1000, max_connections=1, **_bounded()),
            backend("endless-line", "flood", max_sse_line_bytes=100_000, max_connections=1, **_bounded()),
            backend("split-lines", "echo", url=split_lines.url + "/v1"),
        ],
        "routers": [
            {
                "name": "fallback-trickler",
                "kind": "knn",
                "artifact": str(artifact),
                "backends": {"dear": "trickler"},
            }
        ],
        "embedder": "hashing",
        "breaker_failures": 100,
    }
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(settings, tmp_path_factory.mktemp("upstream-limits"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def _bounded():
    """Retries that would show, and a deadline that ends a call whose connection was never freed."""
    return {"retries": 2, "total_timeout_seconds": 5}


def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30)


def ask(gateway, model, text="hello there"):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}]
    )
    return raw.parse()


def stream(gateway, model, text="hello there"):
    return client(gateway).chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], stream=True
    )


def calls(upstream, model):
    return httpx.get(upstream.url + "/calls").json().get(model, 0)


def failure(call):
    """The gateway's error response to ``call()``: (status, error object)."""
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value.status_code, caught.value.response.json()["error"]


# the deadline


def test_a_trickling_upstream_is_ended_at_its_deadline_with_a_504(gateway, upstream):
    before, started = calls(upstream, TRICKLE), time.monotonic()
    status, error = failure(lambda: ask(gateway, "trickler"))
    elapsed = time.monotonic() - started
    assert (status, error["code"]) == (504, "upstream_timeout")
    assert (
        error["message"] == f"backend trickler did not finish its answer within its deadline ({DEADLINE:g} s)"
    )
    assert DEADLINE - 0.1 <= elapsed < DEADLINE + 5.0  # not the 1 s read timeout, not the 30 s trickle
    assert calls(upstream, TRICKLE) == before + 1  # a timeout is not retried


def test_a_trickling_stream_ends_with_an_error_chunk_at_its_deadline(gateway):
    received, started = [], time.monotonic()
    with pytest.raises(
        openai.APIError, match="backend trickler did not finish its answer within its deadline"
    ):
        for chunk in stream(gateway, "trickler"):
            received.append(chunk.choices[0].delta.content)
    assert received == ["echo:"]  # the stream had begun (the second chunk is held back, then cut)
    assert DEADLINE - 0.1 <= time.monotonic() - started < DEADLINE + 5.0


def test_a_router_falls_back_past_a_backend_that_missed_its_deadline(gateway):
    reply = ask(gateway, "fallback-trickler", POEMS[0])
    assert reply.choices[0].message.content == "echo: " + POEMS[0]
    attempts = reply.model_extra["routing"]["attempts"]
    assert [(a["backend"], a["status"]) for a in attempts] == [
        ("trickler", "upstream_timeout"),
        ("cheap", "ok"),
    ]


# the size limits


def test_a_body_over_the_limit_is_a_502_unretried_and_frees_its_connection(gateway, upstream):
    before = calls(upstream, "big:1000000")
    for _ in range(3):  # one connection: each call would wait out its deadline behind an unfreed one
        status, error = failure(lambda: ask(gateway, "big-body"))
        assert (status, error["code"]) == (502, "upstream_response_too_large")
        assert error["message"] == "backend big-body sent a response over its limit of 10000 bytes"
    assert calls(upstream, "big:1000000") == before + 3


def test_an_endless_body_is_cut_at_the_limit(gateway, upstream):
    before = calls(upstream, "flood")
    for _ in range(2):
        status, error = failure(lambda: ask(gateway, "flood"))
        assert (status, error["code"]) == (502, "upstream_response_too_large")
    assert calls(upstream, "flood") == before + 2


@pytest.mark.parametrize(("backend", "limit"), [("long-line", 1000), ("endless-line", 100_000)])
def test_a_stream_line_over_the_limit_is_a_502_before_the_first_byte(gateway, backend, limit):
    for _ in range(2):
        status, error = failure(lambda: list(stream(gateway, backend)))
        assert (status, error["code"]) == (502, "upstream_response_too_large")
        assert error["message"] == f"backend {backend} sent a stream line over its limit of {limit} bytes"


def test_the_gateway_stays_healthy_after_oversized_answers(gateway):
    for backend in ("big-body", "flood"):
        failure(lambda backend=backend: ask(gateway, backend))
    failure(lambda: list(stream(gateway, "endless-line")))
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert ask(gateway, "cheap", "still here").choices[0].message.content == "echo: still here"
    chunks = list(stream(gateway, "cheap", "still here"))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: still here"


def test_stream_lines_split_across_packets_and_line_ends_arrive_whole(gateway):
    chunks = list(stream(gateway, "split-lines"))
    assert [c.choices[0].delta.content for c in chunks] == ["one", " two", " three"]


# one connection pool per backend


@pytest.fixture
def hung_and_healthy(upstream, tmp_path, monkeypatch):
    with RawServer(hold=True) as hung_upstream:  # accepts requests and never answers
        settings = {
            "backends": [
                {
                    "name": "hung",
                    "base_url": hung_upstream.url + "/v1",
                    "max_connections": HUNG_MAX_CONNECTIONS,
                    "total_timeout_seconds": HUNG_DEADLINE,
                    "retries": 0,
                },
                {
                    "name": "healthy",
                    "base_url": upstream.url + "/v1",
                    "model": "echo",
                    "max_connections": HUNG_MAX_CONNECTIONS,
                },
            ],
            "routers": [{"name": "router-fixed", "kind": "fixed", "backend": "healthy"}],
            "breaker_failures": 3,
            "breaker_cooldown_seconds": 60,
        }
        app, server = start_gateway(settings, tmp_path, monkeypatch)
        yield app, server, hung_upstream
        server.__exit__(None, None, None)


def test_a_hung_backend_holds_only_its_own_connections(hung_and_healthy):
    app, gateway, hung_upstream = hung_and_healthy

    def stuck():
        return failure(lambda: ask(gateway, "hung"))

    with concurrent.futures.ThreadPoolExecutor(STUCK_REQUESTS) as threads:
        outcomes = [threads.submit(stuck) for _ in range(STUCK_REQUESTS)]
        reached = _wait_for(lambda: hung_upstream.connections, HUNG_MAX_CONNECTIONS)
        for _ in range(5):
            started = time.monotonic()
            assert ask(gateway, "healthy", "quick").choices[0].message.content == "echo: quick"
            assert time.monotonic() - started < 2.0
        assert breaker_state(app, "healthy") == "closed"
        assert reached == hung_upstream.connections == HUNG_MAX_CONNECTIONS  # the others queue
        assert not any(outcome.done() for outcome in outcomes)  # all still stuck
        results = [outcome.result(timeout=HUNG_DEADLINE + 30) for outcome in outcomes]
    assert {(status, error["code"]) for status, error in results} == {(504, "upstream_timeout")}
    assert breaker_state(app, "hung") == "open"  # the deadline counted as the hung backend's failure
    assert breaker_state(app, "healthy") == "closed"
    assert ask(gateway, "healthy", "after").choices[0].message.content == "echo: after"


def breaker_state(app, name):
    backend = runtime_of(app).catalog.backends[name]
    assert isinstance(backend, OpenAiBackend)
    return backend.breaker.state


def _wait_for(count, target, seconds=HUNG_DEADLINE - 1.0):
    """``count()`` once it reaches ``target`` (or when ``seconds`` have passed)."""
    deadline = time.monotonic() + seconds
    while (value := count()) < target and time.monotonic() < deadline:
        time.sleep(0.05)
    return value
