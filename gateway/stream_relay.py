"""A stream relayed chunk by chunk: the upstream's chunks as SSE, settled and explained at the last one,
logged once the stream ends, and handed to exploration when it ended well (its text is gathered as it
passes: ``routeyard.gateway.exploration``).

:func:`relayed_stream` answers once the first chunk arrived (the request lifecycle has fallen back
along the ranking until then). After that nothing can be re-routed: an upstream failure, or a silence
longer than ``request_timeout_seconds``, ends the stream with an error chunk; a client that leaves is
logged with :data:`CLIENT_CLOSED` (its cost unknown, logged as 0).

Overhead (``routeyard.gateway.explanation``): the ``x-routeyard-overhead-ms`` header is the gateway's own
time up to the first byte; when the stream ends, ``routeyard_overhead_seconds`` counts that plus the
relay's own time (:class:`RelayClock`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from routeyard.gateway.backends.backend import Reply, Usage
from routeyard.gateway.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from routeyard.gateway.explanation import OVERHEAD_HEADER, overhead_ms, routing_headers, routing_object
from routeyard.gateway.request_trace import RequestTrace, log_request
from routeyard.gateway.router import Decision
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.sse import SSE_DONE, sse
from routeyard.gateway.wire import ChatCompletionRequest

logger = logging.getLogger("routeyard.gateway")
CLIENT_CLOSED = 499  # the status logged for a stream the client abandoned (nginx's convention)
Chunks = AsyncIterator[dict[str, Any]]


def relayed_stream(
    first: dict[str, Any],
    chunks: Chunks,
    backend: str,
    started: float,
    request: ChatCompletionRequest,
    decision: Decision,
    trace: RequestTrace,
    runtime: GatewayRuntime,
) -> StreamingResponse:
    """The streamed response to a stream of ``backend`` whose ``first`` chunk arrived (a call begun at
    ``started``), relayed by :func:`_relay`; its cost header is the predicted one (the real cost comes
    last), its overhead header the gateway's own time until now."""
    predicted = decision.candidate(backend)
    cost = predicted.predicted_cost_usd if predicted and predicted.predicted_cost_usd is not None else 0.0
    headers = routing_headers(decision, backend, trace.request_id, cost)
    headers["x-routeyard-cost-usd"] = f"{cost:.8g} predicted"
    clock = RelayClock(trace.overhead_seconds(time.perf_counter()))
    headers[OVERHEAD_HEADER] = overhead_ms(clock.own_seconds)
    relay = _relay(first, chunks, backend, started, request, decision, trace, runtime, clock)
    return StreamingResponse(relay, media_type="text/event-stream", headers=headers)


class RelayClock:
    """The gateway's own time on a stream: ``own_seconds``, the overhead up to the first byte at first,
    plus every stretch the relay works (:meth:`resume` to :meth:`pause`), not the time it waits for the
    upstream's next chunk or for the client to take the last one."""

    def __init__(self, first_byte_seconds: float) -> None:
        self.own_seconds = first_byte_seconds
        self._since = time.perf_counter()

    def resume(self) -> None:
        """The relay works again (it has the next chunk, or it must end)."""
        self._since = time.perf_counter()

    def pause(self) -> None:
        """The relay waits (it hands a chunk over, or awaits the next)."""
        self.own_seconds += time.perf_counter() - self._since


async def _relay(
    first: dict[str, Any],
    chunks: Chunks,
    backend: str,
    started: float,
    request: ChatCompletionRequest,
    decision: Decision,
    trace: RequestTrace,
    runtime: GatewayRuntime,
    clock: RelayClock,
) -> AsyncIterator[str]:
    """The SSE body: the upstream's chunks, settled and given ``routing`` at the last, an error chunk if
    the upstream dies or stays silent for ``request_timeout_seconds``; logged once it ends, with the
    status it ended with (see the module docstring; when the client left first the cost is unknown and
    logged as 0, and nothing counts as saved); its overhead counted once it is logged (``clock``)."""
    clock.resume()
    status, usage, cost = 200, Usage(0, 0, estimated=True), 0.0
    gap = runtime.settings.request_timeout_seconds
    answer = StreamedAnswer()
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if "routeyard_cost_usd" in chunk:
                cost, usage = _settle_last_chunk(chunk, backend, started, usage, trace)
                chunk["routing"] = routing_object(decision, backend, cost, usage, trace)
            chunk.pop("routeyard_replay", None)
            answer.add(chunk)
            line = sse({**chunk, "model": backend})
            clock.pause()
            yield line
            chunk = await _next_chunk(chunks, gap, backend)
            clock.resume()
    except UpstreamError as exc:
        clock.resume()
        status = exc.status
        trace.failed(backend, exc, time.perf_counter() - started)
        yield sse(exc.body())
    except (asyncio.CancelledError, GeneratorExit):
        # the client went away: the upstream's tokens so far are billed, but unknown to us
        clock.resume()
        status = CLIENT_CLOSED
        trace.abandoned(backend, time.perf_counter() - started)
        raise
    except Exception as exc:  # a bug must not leave the client waiting: end the stream with an error
        clock.resume()
        status = 500
        logger.error("request %s: stream relay failed (%s)", trace.request_id, type(exc).__name__)
        yield sse(GatewayError("internal error").body())
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()  # an abandoned stream's upstream response is closed now, not at GC
        log_request(runtime.recorder, request, decision, trace, status=status, backend=backend, usage=usage)
        clock.pause()
        runtime.metrics.observe_overhead(decision.router if decision.routed else None, clock.own_seconds)
    if status == 200:
        router = runtime.catalog.routers.get(decision.router)
        reply = Reply(answer.body(), usage, cost)
        trace.answer_kept(backend, reply)
        runtime.explorer.maybe_explore(router, request, decision, backend, reply, trace.request_id)
    yield SSE_DONE


class StreamedAnswer:
    """The first choice's text and finish reason, gathered from a stream's chunks as they pass."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._finish_reason: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        """Take the text and finish reason of ``chunk``'s first choice, if any."""
        choices = chunk.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        delta = first.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            self._parts.append(delta["content"])
        self._finish_reason = first.get("finish_reason") or self._finish_reason

    def body(self) -> dict[str, Any]:
        """The answer as a whole completion's body (what a judge reads of it)."""
        message = {"role": "assistant", "content": "".join(self._parts)}
        return {"choices": [{"index": 0, "message": message, "finish_reason": self._finish_reason}]}


async def _next_chunk(chunks: Chunks, gap: float, backend: str) -> dict[str, Any] | None:
    """The stream's next chunk (None at its end); raises UpstreamTimeoutError after ``gap`` s of silence."""
    try:
        async with asyncio.timeout(gap):
            return await anext(chunks, None)
    except TimeoutError:
        raise UpstreamTimeoutError(
            f"backend {backend} sent nothing for {gap:g} s (request_timeout_seconds)"
        ) from None


def _settle_last_chunk(
    chunk: dict[str, Any], backend: str, started: float, usage: Usage, trace: RequestTrace
) -> tuple[float, Usage]:
    """A stream's last chunk (it carries ``routeyard_cost_usd``, removed here) noted in the trace: the
    call's $ and its usage (the chunk's, else ``usage``)."""
    cost = float(chunk.pop("routeyard_cost_usd"))
    usage = Usage.from_json(chunk.get("usage")) or usage
    trace.answered(backend, cost, time.perf_counter() - started)
    return cost, usage
