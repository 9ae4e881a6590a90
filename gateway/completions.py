"""Serving one chat completion: resolve ``model``, route, forward with fallback, explain, log.

``model`` is a backend name (sent there, no routing), a router name, a router name with a
willingness-to-pay suffix (``router-knn-0.001``), or ``auto`` for the default router. Before the first
byte reaches the client, a failing backend is replaced by the next in the router's ranking; a request the
upstream rejects (4xx) is not retried elsewhere. Every reply carries the ``routing`` object (in the last
chunk when streamed) and the ``x-routeyard-*`` headers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from gateway.backends.backend import Backend, Usage
from gateway.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    ModelNotFoundError,
    NotReadyError,
    UpstreamError,
    UpstreamRejectedError,
)
from gateway.routers import Decision, Router
from gateway.usage import Attempt, RouteRecord, UsageLog
from gateway.wire import ChatCompletionRequest, RoutingOptions
from predictor.embedder import embedding_text

logger = logging.getLogger("routeyard.gateway")
AUTO_MODEL = "auto"


@dataclass
class Routes:
    """What ``model`` can name: backends, routers (once loaded), the default router."""

    backends: dict[str, Backend]
    routers: dict[str, Router] = field(default_factory=dict)
    router_names: set[str] = field(default_factory=set)  # configured, loaded or not
    default_router: str | None = None
    not_ready_reason: str = "the router's predictor is still loading"


@dataclass
class _Outcome:
    """What a request did, filled in as it goes, for the log and the routing object."""

    request_id: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[UpstreamError] = field(default_factory=list)

    def failed(self, backend: str, error: UpstreamError, started: float) -> None:
        """Note a failed call to ``backend`` that began at ``started`` (``time.perf_counter``)."""
        self.attempts.append(
            Attempt(backend, error.code or "upstream_error", 0.0, time.perf_counter() - started)
        )
        self.errors.append(error)
        logger.warning("request %s: backend %s failed (%s)", self.request_id, backend, error.code)


async def serve_completion(
    request: ChatCompletionRequest, routes: Routes, usage_log: UsageLog, request_id: str
) -> Response:
    """The HTTP response for ``request``; raises ``GatewayError`` before anything was sent."""
    outcome = _Outcome(request_id, time.perf_counter())
    options = request.routing or RoutingOptions()
    decision = await _decide(request, routes, options)
    try:
        if request.stream:
            return await _stream(request, routes, decision, outcome, usage_log)
        return await _complete(request, routes, decision, outcome, usage_log)
    except UpstreamError as exc:
        _log(usage_log, request, decision, outcome, status=exc.status)
        raise


async def _decide(request: ChatCompletionRequest, routes: Routes, options: RoutingOptions) -> Decision:
    name, suffix_wtp = _resolve_model(request.model, routes)
    if name in routes.backends:
        if name in options.exclude:
            raise InvalidRequestError(f"model {name} is excluded by routing.exclude", param="routing")
        return Decision(name, None, (name,), (), 0.0)
    router = routes.routers.get(name)
    if router is None:
        raise NotReadyError(f"router {name} is not ready: {routes.not_ready_reason}")
    if suffix_wtp is not None and options.willingness_to_pay is None:
        options = options.model_copy(update={"willingness_to_pay": suffix_wtp})
    return await router.decide(request.prompt_turns(), options, set(routes.backends))


def _resolve_model(model: str, routes: Routes) -> tuple[str, float | None]:
    """(backend or router name, willingness to pay from a ``-<w>`` suffix); raises ModelNotFoundError."""
    if model == AUTO_MODEL and routes.default_router:
        return routes.default_router, None
    if model in routes.backends or model in routes.router_names:
        return model, None
    prefix, _, suffix = model.rpartition("-")
    if prefix in routes.router_names:
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
    request: ChatCompletionRequest, routes: Routes, decision: Decision, outcome: _Outcome, usage_log: UsageLog
) -> Response:
    for name in decision.ranked:
        started = time.perf_counter()
        try:
            reply = await routes.backends[name].complete(request.upstream_body(name))
        except UpstreamRejectedError:
            raise
        except UpstreamError as exc:
            outcome.failed(name, exc, started)
            continue
        outcome.attempts.append(Attempt(name, "ok", reply.cost_usd, time.perf_counter() - started))
        body = {**reply.body, "model": name}
        body.setdefault("usage", reply.usage.as_json())
        body["routing"] = _routing_object(decision, name, reply.cost_usd, reply.usage, outcome)
        _log(usage_log, request, decision, outcome, status=200, backend=name, usage=reply.usage)
        return JSONResponse(body, headers=_headers(decision, name, outcome.request_id, reply.cost_usd))
    raise _exhausted(outcome)


async def _stream(
    request: ChatCompletionRequest, routes: Routes, decision: Decision, outcome: _Outcome, usage_log: UsageLog
) -> Response:
    for name in decision.ranked:
        started = time.perf_counter()
        chunks = routes.backends[name].stream(request.upstream_body(name))
        try:
            first = await anext(chunks)
        except UpstreamRejectedError:
            raise
        except UpstreamError as exc:
            outcome.failed(name, exc, started)
            continue
        body = _relay(first, chunks, name, request, decision, outcome, usage_log, started)
        predicted = decision.candidate(name)
        cost = predicted.predicted_cost_usd if predicted and predicted.predicted_cost_usd is not None else 0.0
        headers = _headers(decision, name, outcome.request_id, cost)
        headers["x-routeyard-cost-usd"] = f"{cost:.8g} predicted"
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)
    raise _exhausted(outcome)


async def _relay(
    first: dict[str, Any],
    chunks: AsyncIterator[dict[str, Any]],
    name: str,
    request: ChatCompletionRequest,
    decision: Decision,
    outcome: _Outcome,
    usage_log: UsageLog,
    started: float,
) -> AsyncIterator[str]:
    """The SSE body: the upstream's chunks, ``routing`` in the last, an error chunk if the upstream dies."""
    status, cost, usage = 200, 0.0, Usage(0, 0, estimated=True)
    try:
        chunk: dict[str, Any] | None = first
        while chunk is not None:
            if "routeyard_cost_usd" in chunk:
                cost = float(chunk.pop("routeyard_cost_usd"))
                usage = Usage.from_json(chunk.get("usage")) or usage
                outcome.attempts.append(Attempt(name, "ok", cost, time.perf_counter() - started))
                chunk["routing"] = _routing_object(decision, name, cost, usage, outcome)
            chunk.pop("routeyard_replay", None)
            yield _sse({**chunk, "model": name})
            chunk = await anext(chunks, None)
    except UpstreamError as exc:
        status = exc.status
        outcome.failed(name, exc, started)
        yield _sse(exc.body())
    finally:
        _log(usage_log, request, decision, outcome, status=status, backend=name, usage=usage, streamed=True)
    yield "data: [DONE]\n\n"


def _exhausted(outcome: _Outcome) -> UpstreamError:
    """The error for a request no candidate could answer: the one failure itself, or all of them."""
    if len(outcome.errors) == 1:
        return outcome.errors[0]
    return BackendUnavailableError("no backend could answer: " + "; ".join(e.message for e in outcome.errors))


def _routing_object(
    decision: Decision, backend: str, cost: float, usage: Usage, outcome: _Outcome
) -> dict[str, Any]:
    chosen = decision.candidate(backend)
    return {
        "request_id": outcome.request_id,
        "router": decision.router if decision.router != backend else None,
        "backend": backend,
        "willingness_to_pay": _finite_or_none(decision.willingness_to_pay),
        "predicted_quality": chosen.predicted_quality if chosen else None,
        "predicted_cost_usd": chosen.predicted_cost_usd if chosen else None,
        "cost_usd": cost,
        "cost_estimated": usage.estimated,
        "routing_ms": round(decision.routing_seconds * 1000.0, 3),
        "attempts": [
            {
                "backend": a.backend,
                "status": a.status,
                "cost_usd": a.cost_usd,
                "seconds": round(a.latency_seconds, 4),
            }
            for a in outcome.attempts
        ],
        "candidates": [
            {
                "backend": c.backend,
                "predicted_quality": c.predicted_quality,
                "predicted_cost_usd": c.predicted_cost_usd,
                "allowed": c.allowed,
            }
            for c in decision.candidates
        ],
    }


def _headers(decision: Decision, backend: str, request_id: str, cost: float) -> dict[str, str]:
    chosen = decision.candidate(backend)
    headers = {
        "x-routeyard-request-id": request_id,
        "x-routeyard-backend": backend,
        "x-routeyard-cost-usd": f"{cost:.8g}",
    }
    if decision.router != backend:
        headers["x-routeyard-router"] = decision.router
    if chosen is not None and chosen.predicted_quality is not None:
        headers["x-routeyard-predicted-quality"] = f"{chosen.predicted_quality:.4f}"
    return headers


def _log(
    usage_log: UsageLog,
    request: ChatCompletionRequest,
    decision: Decision,
    outcome: _Outcome,
    *,
    status: int,
    backend: str | None = None,
    usage: Usage | None = None,
    streamed: bool = False,
) -> None:
    chosen = decision.candidate(backend) if backend else None
    usage = usage or Usage(0, 0, estimated=True)
    elapsed = time.perf_counter() - outcome.started
    record = RouteRecord(
        request_id=outcome.request_id,
        time=time.time(),
        router=decision.router if decision.router != backend else None,
        backend=backend,
        status=status,
        prompt_sha256=hashlib.sha256(embedding_text(request.prompt_turns()).encode()).hexdigest(),
        predicted_quality=chosen.predicted_quality if chosen else None,
        cost_usd=sum(a.cost_usd for a in outcome.attempts),
        cost_estimated=usage.estimated,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        routing_seconds=decision.routing_seconds,
        total_seconds=elapsed,
        streamed=streamed,
        attempts=tuple(outcome.attempts),
    )
    usage_log.record(record)
    logger.info(
        "request %s router=%s backend=%s status=%d %.1f ms",
        outcome.request_id,
        record.router,
        backend,
        status,
        elapsed * 1000.0,
    )


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
