"""A second HTTP backend built on HttpTransport in a few lines, speaking a wire that is not OpenAI's (the
"token service" below), gets retries, the circuit breaker and error translation without re-implementing
any of them. The token service is a real server on 127.0.0.1."""

import asyncio
import collections
import json
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from routeyard.gateway.backends.backend import Reply, Usage
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.backends.http_transport import HttpTransport, UpstreamLimits
from routeyard.gateway.errors import (
    BackendUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from routeyard.gateway.wire import content_text
from routeyard.testing.server_thread import ServerThread

TOKEN = "tok-service-secret-31337"
WRONG_TOKEN = "tok-wrong-secret-0000"


def token_service():
    """``POST /{mode}`` with ``{"input": text}`` and an ``x-token`` header answers
    ``{"output": "heard: text", "tokens": {"in": 3, "out": 2}}``; ``/stream`` answers the same as
    ``event: piece`` / ``event: done`` lines. ``mode``: ``ok``, ``flaky-N`` (503 on the first N calls),
    ``down`` (always 503), ``stream``, ``picky`` (400), ``hang`` (answers after 1.5 s). A wrong token
    gets 401. ``GET /calls`` counts the POSTs per mode."""
    calls: collections.Counter[str] = collections.Counter()

    async def generate(request: Request) -> Response:
        mode = request.path_params["mode"]
        calls[mode] += 1
        if request.headers.get("x-token") != TOKEN:
            return JSONResponse({"fault": "who are you"}, status_code=401)
        if mode == "down" or (mode.startswith("flaky-") and calls[mode] <= int(mode.removeprefix("flaky-"))):
            return JSONResponse({"fault": "busy"}, status_code=503)
        if mode == "picky":
            return JSONResponse({"fault": "no input"}, status_code=400)
        if mode == "hang":
            await asyncio.sleep(1.5)
        output = "heard: " + (await request.json())["input"]
        if mode == "stream":
            return StreamingResponse(_events(output), media_type="text/event-stream")
        return JSONResponse({"output": output, "tokens": {"in": 3, "out": 2}})

    async def count(request: Request) -> Response:
        return JSONResponse(dict(calls))

    return Starlette(routes=[Route("/calls", count), Route("/{mode}", generate, methods=["POST"])])


async def _events(output):
    for word in output.split(" "):
        yield f"event: piece\ndata: {json.dumps({'text': word})}\n\n"
    yield f"event: done\ndata: {json.dumps({'tokens': {'in': 3, 'out': 2}})}\n\n"


class TokenServiceBackend:
    """The whole second backend: its wire only; the transport does the rest."""

    def __init__(self, name, pool, url, token=TOKEN, **transport):
        self.name = name
        self.transport = HttpTransport(name, pool, url=url, headers={"x-token": token}, **transport)

    async def complete(self, body):
        with self.transport.breaker_verdict():
            response = await self.transport.post({"input": content_text(body["messages"][-1]["content"])})
            answer = json.loads(await self.transport.read_body(response))
        usage = Usage(answer["tokens"]["in"], answer["tokens"]["out"])
        message = {"role": "assistant", "content": answer["output"]}
        return Reply({"choices": [{"index": 0, "message": message}], "usage": usage.as_json()}, usage, 0.0)

    async def stream(self, body):
        with self.transport.breaker_verdict():
            response = await self.transport.post({"input": content_text(body["messages"][-1]["content"])})
            async for line in self.transport.lines(response):
                if line.startswith("data:") and "text" in (data := json.loads(line[5:])):
                    yield {"choices": [{"index": 0, "delta": {"content": data["text"]}}]}


@pytest.fixture(scope="module")
def service():
    with ServerThread(token_service()) as server:
        yield server


def calls(service, mode):
    return httpx.get(service.url + "/calls").json().get(mode, 0)


def run(service, mode, scenario, **backend_options):
    """``scenario(backend)`` run against the token service's ``mode``, on a fresh pool."""

    async def main():
        async with ConnectionPools() as pools:
            url = f"{service.url}/{mode}"
            backend = TokenServiceBackend("tokens", pools.new_pool(), url, **backend_options)
            return await scenario(backend)

    return asyncio.run(main())


def ask(text="hi"):
    return {"model": "tokens", "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}


def test_a_whole_answer_and_a_stream_come_through_the_transport(service):
    reply = run(service, "ok", lambda backend: backend.complete(ask("hello")))
    assert reply.body["choices"][0]["message"]["content"] == "heard: hello"
    assert reply.usage == Usage(3, 2)

    async def streamed(backend):
        return [c["choices"][0]["delta"]["content"] async for c in backend.stream(ask("a b"))]

    assert run(service, "stream", streamed) == ["heard:", "a", "b"]


def test_a_503_is_retried_with_backoff_until_it_answers(service):
    reply = run(service, "flaky-2", lambda backend: backend.complete(ask()), retries=2)
    assert reply.body["choices"][0]["message"]["content"] == "heard: hi"
    assert calls(service, "flaky-2") == 3


def test_retries_end_in_an_upstream_error_that_names_the_status(service):
    before = calls(service, "down")
    with pytest.raises(UpstreamError, match="backend tokens answered HTTP 503") as raised:
        run(service, "down", lambda backend: backend.complete(ask()), retries=1)
    assert raised.value.code == "upstream_error" and raised.value.status == 502
    assert calls(service, "down") - before == 2  # the first try and one retry


def test_the_breaker_opens_after_n_failures_and_then_refuses_without_calling(service):
    breaker = CircuitBreaker(failures=3, cooldown=60.0)

    async def scenario(backend):
        outcomes = []
        for _ in range(5):
            try:
                await backend.complete(ask())
            except UpstreamError as exc:
                outcomes.append(type(exc).__name__)
        return outcomes

    before = calls(service, "down")
    outcomes = run(service, "down", scenario, retries=0, breaker=breaker)
    assert outcomes == ["UpstreamError"] * 3 + ["BackendUnavailableError"] * 2
    assert breaker.state == "open"
    assert calls(service, "down") - before == 3  # the open breaker kept the last two calls home
    with pytest.raises(BackendUnavailableError, match="cooling down"):
        run(service, "down", lambda backend: backend.complete(ask()), breaker=breaker)


def test_a_401_is_the_gateways_credentials_rejected_not_retried_and_never_names_the_key(service):
    breaker = CircuitBreaker(failures=1, cooldown=60.0)
    with pytest.raises(UpstreamError) as raised:
        run(service, "locked", lambda b: b.complete(ask()), token=WRONG_TOKEN, retries=2, breaker=breaker)
    assert raised.value.code == "upstream_credentials_rejected" and raised.value.status == 502
    assert "rejected the gateway's credentials (HTTP 401)" in raised.value.message
    assert WRONG_TOKEN not in raised.value.message and TOKEN not in raised.value.message
    assert calls(service, "locked") == 1  # no retry
    assert breaker.state == "open"  # the gateway's misconfiguration counts against the backend


def test_the_requests_own_4xx_is_passed_on_and_no_failure_of_the_backend(service):
    breaker = CircuitBreaker(failures=1, cooldown=60.0)
    with pytest.raises(UpstreamRejectedError) as raised:
        run(service, "picky", lambda backend: backend.complete(ask()), retries=2, breaker=breaker)
    assert raised.value.status == 400
    assert calls(service, "picky") == 1 and breaker.state == "closed"


def test_a_stalled_answer_times_out_without_retry(service):
    with pytest.raises(UpstreamTimeoutError, match="backend tokens timed out"):
        run(service, "hang", lambda b: b.complete(ask()), timeout=httpx.Timeout(0.3), retries=2)
    assert calls(service, "hang") == 1


def test_the_deadline_bounds_a_call_with_all_its_retries(service):
    before, started = calls(service, "down"), time.monotonic()
    with pytest.raises(UpstreamTimeoutError, match=r"backend tokens did not finish .* deadline \(0.5 s\)"):
        # ten retries back off for 51 s in all; the deadline ends them after half a second
        run(
            service, "down", lambda b: b.complete(ask()), retries=10, limits=UpstreamLimits(total_seconds=0.5)
        )
    assert time.monotonic() - started < 10.0
    assert 1 < calls(service, "down") - before < 11
