"""Serving one chat completion: resolve ``model``, route, forward with fallback, explain, log.

``model`` is a backend name (sent there, no routing), a router name, a router name with a
willingness-to-pay suffix (``router-knn-0.001``), or ``auto`` for the default router. Cascade routers
are served by ``routeyard.gateway.cascade_completion``; for the others, before the first byte reaches the
client, a failing backend is replaced by the next in the router's ranking; a request the upstream
rejects (a 4xx but 401/403/404/408/429, which are the backend's failure) is not retried elsewhere.
Every reply carries the ``routing`` object (in the last chunk when streamed) and the ``x-routeyard-*``
headers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from routeyard.gateway.backends.backend import Backend, Usage
from routeyard.gateway.cascade_completion import serve_cascade
from routeyard.gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    NotReadyError,
    UpstreamError,
    UpstreamRejectedError,
)
from routeyard.gateway.explanation import SSE_DONE, routing_headers, routing_object, sse
from routeyard.gateway.outcome import Outcome, log_outcome
from routeyard.gateway.router import Decision, Router
from routeyard.gateway.routers.cascade import CascadeRouter
from routeyard.gateway.usage import Attempt, UsageLog
from routeyard.gateway.wire import ChatCompletionRequest, RoutingOptions

logger = logging.getLogger("routeyard.gateway")
AUTO_MODEL = "auto"
CLIENT_CLOSED = 499  # the status logged for a stream the client abandoned (nginx's convention)


@dataclass
class Routes:
    """What ``model`` can name: backends, routers (once loaded), the default router."""

    backends: dict[str, Backend]
    routers: dict[str, Router] = field(default_factory=dict)
    router_names: set[str] = field(default_factory=set)  # configured, loaded or not
    default_router: str | None = None
    not_ready_reason: str = "the router's predictor is still loading"


async def serve_completion(
    request: ChatCompletionRequest, routes: Routes, usage_log: UsageLog, outcome: Outcome
) -> Response:
    """The HTTP response for ``request``; raises ``GatewayError`` before anything was sent."""
    options = request.routing or RoutingOptions()
    decision, router = await _decide(request, routes, options)
    if isinstance(router, CascadeRouter):
        return await serve_cascade(request, routes.backends, router, decision, outcome, usage_log)
    try:
        if request.stream:
            return await _stream(request, routes, decision, outcome, usage_log)
        return await _complete(request, routes, decision, outcome, usage_log)
    except UpstreamError as exc:
        log_outcome(usage_log, request, decision, outcome, status=exc.status)
        raise


async def _decide(
    request: ChatCompletionRequest, routes: Routes, options: RoutingOptions
) -> tuple[Decision, Router | None]:
    """The decision for ``request`` and the router that made it (None when ``model`` names a backend)."""
    name, suffix_wtp = _resolve_model(request.model, routes)
    if name in routes.backends:
        if name in options.exclude:
            raise InvalidRequestError(f"model {name} is excluded by routing.exclude", param="routing")
        return Decision(name, None, (name,), (), 0.0), None
    router = routes.routers.get(name)
    if router is None:
        raise NotReadyError(f"router {name} is not ready: {routes.not_ready_reason}")
    if suffix_wtp is not None and options.willingness_to_pay is None:
        options = options.model_copy(update={"willingness_to_pay": suffix_wtp})
    return await router.decide(request.prompt_turns(), options, set(routes.backends)), router


def _resolve_model(model: str, routes: Routes) -> tuple[str, float | None]:
    """(backend or router name, willingness to pay from a ``-<w>`` suffix); raises ModelNotFoundError."""
    if model == AUTO_MODEL and routes.default_router:
        return routes.default_router, None
    if model in routes.backends or model in routes.router_names:
        return model, None
    # the longest router name that is a prefix: "router-knn-1e-3" is router-knn at w = 1e-3
    prefix = max((r for r in routes.router_names if model.startswith(r + "-")), key=len, default=None)
    if prefix is not None:
        suffix = model[len(prefix) + 1 :]
        try:
            wtp = float(suffix)
        except ValueError:
            wtp = math.nan
        if not wtp >= 0.0:
            raise InvalidRequestError(
                f"model {model}: the suffix after {prefix}- must be a willingness to pay ≥ 0",
                param="model",
                code="invalid_willingness_to_pay",
            )
        return prefix, wtp
    raise ModelNotFoundError(
        f"model {model!r} is neither a backend nor a router; see GET /v1/models", param="model"
    )


async def _complete(
    request: ChatCompletionRequest, routes: Routes, decision: Decision, outcome: Outcome, usage_log: UsageLog
) -> Response:
    for name in decision.ranked:
        started = time.perf_counter()
        try:
            reply = await routes.backends[name].complete(request.upstream_body(name))
        except UpstreamRejectedError:
            raise
        except UpstreamError as exc:
            outcome.failed(name, exc, time.perf_counter() - started)
            continue
        outcome.attempts.append(Attempt(name, "ok", reply.cost_usd, time.perf_counter() - started))
        body = {**reply.body, "model": name}
        body.setdefault("usage", reply.usage.as_json())
        body["routing"] = routing_object(decision, name, reply.cost_usd, reply.usage, outcome)
        log_outcome(usage_log, request, decision, outcome, status=200, backend=name, usage=reply.usage)
        return JSONResponse(body, headers=routing_headers(decision, name, outcome.request_id, reply.cost_usd))
    raise outcome.exhausted()


async def _stream(
    request: ChatCompletionRequest, routes: Routes, decision: Decision, outcome: Outcome, usage_log: UsageLog
) -> Response:
    for name in decision.ranked:
        started = time.perf_counter()
        chunks = routes.backends[name].stream(request.upstream_body(name))
        try:
            first = await anext(chunks)
        except UpstreamRejectedError:
            raise
        except UpstreamError as exc:
            outcome.failed(name, exc, time.perf_counter() - started)
            continue
        outcome.first_token_seconds = time.perf_counter() - outcome.started
        body = _relay(first, chunks, name, request, decision, outcome, usage_log, started)
        predicted = decision.candidate(name)
        cost = predicted.predicted_cost_usd if predicted and predicted.predicted_cost_usd is not None else 0.0
        headers = routing_headers(decision, name, outcome.request_id, cost)
        headers["x-routeyard-cost-usd"] = f"{cost:.8g} predicted"
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)
    raise outcome.exhausted()


async def _relay(
    first: dict[str, Any],
    chunks: AsyncIterator[dict[str, Any]],
    name: str,
    request: ChatCompletionRequest,
    decision: Decision,
    outcome: Outcome,
    usage_log: UsageLog,
    started: float,
) -> AsyncIterator[str]:
    """The SSE body: the upstream's chunks, ``routing`` in the last, an error chunk if the upstream dies.

    Logged once it ends: 200, the upstream error's status, 500, or :data:`CLIENT_CLOSED` (499) when the
    client disconnected first (then the cost is unknown and logged as 0, and nothing counts as saved).
    """
    status, cost, usage = 200, 0.0, Usage(0, 0, estimated=True)
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if "routeyard_cost_usd" in chunk:
                cost = float(chunk.pop("routeyard_cost_usd"))
                usage = Usage.from_json(chunk.get("usage")) or usage
                outcome.attempts.append(Attempt(name, "ok", cost, time.perf_counter() - started))
                chunk["routing"] = routing_object(decision, name, cost, usage, outcome)
            chunk.pop("routeyard_replay", None)
            yield sse({**chunk, "model": name})
            chunk = await anext(chunks, None)
    except UpstreamError as exc:
        status = exc.status
        outcome.failed(name, exc, time.perf_counter() - started)
        yield sse(exc.body())
    except (asyncio.CancelledError, GeneratorExit):
        # the client went away: the upstream's tokens so far are billed, but unknown to us
        status = CLIENT_CLOSED
        outcome.attempts.append(Attempt(name, "client_closed", 0.0, time.perf_counter() - started))
        raise
    except Exception as exc:  # a bug must not leave the client waiting: end the stream with an error
        status = 500
        logger.error("request %s: stream relay failed (%s)", outcome.request_id, type(exc).__name__)
        yield sse(GatewayError("internal error").body())
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()  # an abandoned stream's upstream response is closed now, not at GC
        log_outcome(
            usage_log, request, decision, outcome, status=status, backend=name, usage=usage, streamed=True
        )
    yield SSE_DONE
