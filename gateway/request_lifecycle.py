"""One chat completion, top to bottom: resolve ``model``, decide, call, settle, render, log.

1. **Resolve** ``model``: a backend name (sent there, no routing), a router name, a router name with a
   willingness-to-pay suffix (``router-knn-0.001``), or ``auto`` for the default router.
2. **Decide**: the router ranks the backends (a backend named directly is its own one-entry ranking),
   never one that cannot serve the request (``routeyard.gateway.capabilities``: tools, vision, a JSON
   schema, context and output limits), each such noted with why in the ``routing`` object's ``excluded``.
   Then the **cache** (``routeyard.gateway.response_cache``): a request that asked it and is
   deterministic is answered from it when it can be ($0, no call); a miss keeps its answer once whole.
   Else **session affinity** (``routeyard.gateway.session_affinity``): a request continuing a session has
   the session's backend put first when it is still ranked (a walk is then skipped: that backend is
   called directly); whoever answers is remembered.
3. **Call**: a walking router (the cascade, the plan router) walks its plan (every call whole: the
   judge needs the full answer; calls may run concurrently, each is settled when the walk ends);
   otherwise, before the first byte reaches the client, a failing backend is replaced by the next in the
   ranking. A request the upstream rejects (a 4xx other than 401/403/404/408/429, which are the
   backend's failure) is not retried elsewhere.
4. **Settle**: every call goes into the request's :class:`RequestTrace` (its attempts and $); the answer
   kept, with what it cost — the reply's own $, or a walk's every call — is a :class:`SettledReply`.
   A stream settles when its last chunk (the one with ``routeyard_cost_usd``) arrives.
5. **Render**: whole JSON, an SSE stream relayed chunk by chunk, or a walk's kept answer as a stream;
   every reply carries the ``routing`` object (in the last chunk when streamed) and the ``x-routeyard-*``
   headers (``routeyard.gateway.explanation``), among them the gateway's own time so far
   (``x-routeyard-overhead-ms``; every upstream call is awaited through ``RequestTrace.upstream``, which
   clocks the waiting), also counted in ``routeyard_overhead_seconds`` (a stream's once it ends).
6. **Log**: one record per request (``routeyard.gateway.request_trace.log_request``) — a failure too,
   with the error's status; a stream once it ends: 200, the upstream's error status, 500, or
   :data:`~routeyard.gateway.stream_relay.CLIENT_CLOSED` when the client left first (streams:
   ``routeyard.gateway.stream_relay``).
7. **Explore**: an answer of a router that explores may be explored once rendered (a stream's once it
   ended): another candidate asked and both answers graded in a background task
   (``routeyard.gateway.exploration``; walks are not explored).

Requests refused before a router decided (bad input, unknown model, router not ready, no backend
allowed) raise and are left to the caller, who counts them (``log_refusal``). Every error raised here
carries the overhead header too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from fastapi.responses import StreamingResponse
from starlette.responses import Response

from routeyard.gateway.backends.backend import Backend, Reply, Usage
from routeyard.gateway.capabilities import (
    shortfall_message,
)
from routeyard.gateway.errors import (
    DeadlineExceededError,
    EmbedderUnavailableError,
    GatewayError,
    InvalidRequestError,
    NoBackendFitsError,
    NotReadyError,
    UpstreamError,
    UpstreamRejectedError,
)
from routeyard.gateway.explanation import (
    OVERHEAD_HEADER,
    overhead_ms,
    routing_headers,
    routing_object,
    walk_object,
)
from routeyard.gateway.fast_json import FastJSONResponse
from routeyard.gateway.keys.key_enforcement import KeyHold, restricted_request
from routeyard.gateway.keys.virtual_key import KeyRecord
from routeyard.gateway.request_trace import RequestTrace, log_request
from routeyard.gateway.response_cache.policy import (
    CACHE_HEADER,
    CacheHit,
    cache_query,
    requested_match,
    uncacheable,
)
from routeyard.gateway.router import Decision, PacedRouter, Router
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.session_affinity import SessionAffinity, session_of
from routeyard.gateway.sse import completion_chunks
from routeyard.gateway.stream_relay import Chunks, relayed_stream
from routeyard.gateway.walk import PlanWalk, Walk, WalkingRouter
from routeyard.gateway.wire import ChatCompletionRequest, RoutingOptions
from routeyard.predictor.embedder import embedding_text

logger = logging.getLogger("routeyard.gateway")
T = TypeVar("T")


@dataclass(frozen=True)
class SettledReply:
    """The answer a request keeps, its calls noted in the trace: the ``backend`` that gave it, its
    completion ``body`` and ``usage``, the $ the reply states (``cost_usd``: the answer's own, or a
    walk's whole cost), for a plan router the ``plan`` it took (by name), and for a walk the ``routing``
    keys that explain it (``walk``: its ``cascade`` or ``plan`` object)."""

    backend: str
    body: dict[str, Any]
    usage: Usage
    cost_usd: float
    plan: str | None = None
    walk: dict[str, Any] | None = None


async def serve_completion(
    request: ChatCompletionRequest, runtime: GatewayRuntime, trace: RequestTrace, key: KeyRecord | None = None
) -> Response:
    """The HTTP response for ``request`` from the virtual key ``key`` (None: no key's limits apply),
    within the request deadline (``request_timeout_seconds`` since ``trace.started``; a stream's deadline
    ends at its first chunk, see ``stream_relay`` for the gaps after). Raises ``GatewayError`` before
    anything was sent: an upstream's failure or the deadline logged first, a refusal not; either carries
    the overhead header (:func:`_carry_overhead`)."""
    remaining = runtime.settings.request_timeout_seconds - (time.perf_counter() - trace.started)
    try:
        async with asyncio.timeout(max(remaining, 0.0)):
            return await _serve(request, runtime, trace, key)
    except TimeoutError:
        trace.settle_key(None)
        deadline = DeadlineExceededError(
            f"the request took longer than {runtime.settings.request_timeout_seconds:g} s "
            "(request_timeout_seconds)"
        )
        _carry_overhead(deadline, trace)
        raise deadline from None
    except GatewayError as exc:
        trace.settle_key(None)
        _carry_overhead(exc, trace)
        raise
    except BaseException:
        trace.settle_key(None)  # a reservation still held here was never logged: release it
        raise


async def _serve(
    request: ChatCompletionRequest, runtime: GatewayRuntime, trace: RequestTrace, key: KeyRecord | None
) -> Response:
    if key is not None:
        catalog = runtime.catalog
        resolved, _ = catalog.resolve(request.model)
        request = restricted_request(request, key.limits, resolved, set(catalog.backends))
    decision, router = await _decide(request, runtime, trace)
    if (paced := _paced(router)) is not None:  # its w follows its spend: told this request's $ when logged
        trace.paced_router = paced
        runtime.metrics.watch_pacing(paced)
    if key is not None:
        decision = await _reserve(request, runtime, decision, router, trace, key)
    walker = _walker(router)
    if (hit := await _cached(request, runtime, trace)) is not None:
        return _answer(request, runtime, decision, trace, _settle_cached(hit), logged_usage=Usage(0, 0))
    if router is not None and runtime.affinity is not None:
        decision, walker = await _pin(request, runtime, runtime.affinity, decision, walker, trace)
    try:
        if request.stream and walker is None:
            return await _stream(request, runtime, decision, trace)  # settled, rendered and logged as it goes
        settled = await _call(request, runtime.catalog.backends, walker, decision, trace)
    except UpstreamError as exc:
        log_request(runtime.recorder, request, decision, trace, status=exc.status)
        _count_overhead(runtime, decision, trace.overhead_seconds(time.perf_counter()))
        raise
    except asyncio.CancelledError:  # the deadline passed (or the server is stopping): logged as a 504
        log_request(runtime.recorder, request, decision, trace, status=DeadlineExceededError.status)
        _count_overhead(runtime, decision, trace.overhead_seconds(time.perf_counter()))
        raise
    reply = Reply(settled.body, settled.usage, settled.cost_usd)
    trace.answer_kept(settled.backend, reply)
    response = _answer(request, runtime, decision, trace, settled, logged_usage=settled.usage)
    if walker is None and not request.stream:  # 7. explore, off the request's path
        runtime.explorer.maybe_explore(router, request, decision, settled.backend, reply, trace.request_id)
    return response


def _answer(
    request: ChatCompletionRequest,
    runtime: GatewayRuntime,
    decision: Decision,
    trace: RequestTrace,
    settled: SettledReply,
    *,
    logged_usage: Usage,
) -> Response:
    """The whole reply of ``settled`` (5. rendered, 6. logged with ``logged_usage``), with its overhead."""
    body = _render_body(settled, decision, trace)
    log_request(
        runtime.recorder,
        request,
        decision,
        trace,
        status=200,
        backend=settled.backend,
        usage=logged_usage,
        route=settled.plan,
    )
    response = _render_whole(body, settled, decision, trace, as_stream=request.stream)
    _mark_cache(response, trace)
    overhead = trace.overhead_seconds(time.perf_counter())
    response.headers[OVERHEAD_HEADER] = overhead_ms(overhead)
    _count_overhead(runtime, decision, overhead)
    return response


async def _reserve(
    request: ChatCompletionRequest,
    runtime: GatewayRuntime,
    decision: Decision,
    router: Router | None,
    trace: RequestTrace,
    key: KeyRecord,
) -> Decision:
    """``decision`` (or its downgrade) once ``key``'s reservation is held (``trace.key_hold``)."""
    assert runtime.keys is not None, "a virtual key without a key store"

    async def redecide(cheaper: ChatCompletionRequest) -> Decision:
        return (await _decide(cheaper, runtime, trace))[0]

    decision, reservation = await runtime.keys.admit(
        key, request, decision, runtime.catalog.backends, redecide if router is not None else None
    )
    trace.key_hold = KeyHold(reservation, runtime.keys)
    return decision


# 1–2. resolve and decide


async def _decide(
    request: ChatCompletionRequest, runtime: GatewayRuntime, trace: RequestTrace
) -> tuple[Decision, Router | None]:
    """The decision for ``request`` and the router that made it (None when ``model`` names a backend).
    Backends that cannot serve the request (``routeyard.gateway.capabilities``) are noted in
    ``trace.excluded`` and added to its ``routing.exclude``; a backend named directly that cannot, or a
    router left with none, is a 400 naming the capability missing."""
    options = request.routing or RoutingOptions()
    catalog = runtime.catalog
    name, suffix_wtp = catalog.resolve(request.model)
    needs, unfit = runtime.capabilities.unfit(request)
    trace.excluded = unfit
    if name in catalog.backends:
        if name in options.exclude:
            raise InvalidRequestError(f"model {name} is excluded by routing.exclude", param="routing")
        if name in unfit:
            raise InvalidRequestError(
                f"backend {name} cannot serve this request: it {unfit[name]}",
                param="model",
                code="unsupported_capability",
            )
        return Decision(name, None, (name,), (), 0.0), None
    router = catalog.routers.get(name)
    if router is None:
        raise NotReadyError(f"router {name} is not ready: {runtime.not_ready_reason}")
    if suffix_wtp is not None and options.willingness_to_pay is None:
        options = options.model_copy(update={"willingness_to_pay": suffix_wtp})
    if unfit:
        options = options.model_copy(update={"exclude": [*options.exclude, *unfit]})
    try:
        return await router.decide(request.prompt_turns(), options, set(catalog.backends)), router
    except EmbedderUnavailableError as exc:
        return _embedder_failed(runtime, name, exc, options.exclude), None
    except NoBackendFitsError as exc:
        if needs is None or not unfit:
            raise
        capabilities = runtime.capabilities.backends
        why = shortfall_message(needs, {b: capabilities[b] for b in unfit})
        raise NoBackendFitsError(f"{why} ({exc.message})", code="unsupported_capability") from exc


# 2½. the response cache and session affinity


async def _cached(
    request: ChatCompletionRequest, runtime: GatewayRuntime, trace: RequestTrace
) -> CacheHit | None:
    """The cached answer to ``request`` when it asked the cache (``routeyard.gateway.response_cache``) and
    one fits, else None; ``trace.cache`` says what happened, and a cacheable miss keeps its answer."""
    match = requested_match(request, runtime.settings.cache_default)
    if match is None:
        return None
    counted = runtime.metrics.cache_requests
    if (why := uncacheable(request)) is not None:
        trace.cache = {"hit": False, "match": None, "bypass": why}
        counted.labels("bypass").inc()
        return None
    cache = runtime.response_cache
    hit, query = await cache.find(cache_query(request, trace.client, match), request)
    if hit is None:
        trace.cache = {"hit": False, "match": match}
        trace.on_answer.append(lambda backend, reply: cache.keep(query, backend, reply))
        counted.labels("miss").inc()
        return None
    trace.cache = hit.explained()
    counted.labels(f"hit_{hit.match}").inc()
    return hit


def _settle_cached(hit: CacheHit) -> SettledReply:
    """A cache hit as the request's answer: its backend's, at $0, with no call in the trace."""
    reply = hit.reply()
    return SettledReply(hit.answer.backend, reply.body, reply.usage, 0.0)


async def _pin(
    request: ChatCompletionRequest,
    runtime: GatewayRuntime,
    affinity: SessionAffinity,
    decision: Decision,
    walker: WalkingRouter | None,
    trace: RequestTrace,
) -> tuple[Decision, WalkingRouter | None]:
    """``decision`` with the session's backend first (``routeyard.gateway.session_affinity``) and the
    walker, or — when affinity decided — no walker: the session's backend is called directly, the
    ranking's other backends after it on failure. Whoever answers is remembered for the session."""
    session = session_of(request, trace.client, decision.router)
    trace.on_answer.append(lambda backend, _: affinity.answered(session, backend))
    if not session.continues:
        return decision, walker
    pinned, pinning = await affinity.pin(session, decision)
    trace.affinity = pinning.explained()
    outcome = "decided" if pinning.decided else "moved" if pinning.backend is not None else "new"
    runtime.metrics.affinity_requests.labels(outcome).inc()
    if not pinning.decided:
        return decision, walker
    if walker is not None:  # a plan router ranks plans: keep the backends among them
        backends = runtime.catalog.backends
        pinned = replace(pinned, ranked=tuple(b for b in pinned.ranked if b in backends))
    return pinned, None


def _walker(router: Router | None) -> WalkingRouter | None:
    """``router`` when it is a :class:`WalkingRouter` (it has ``walk``: a cascade or plan router), else
    None. Duck-typed: ``isinstance`` against the runtime-checkable protocol cost ≈ 2 % of a passthrough
    request's CPU (py-spy)."""
    return cast(WalkingRouter, router) if callable(getattr(router, "walk", None)) else None


def _paced(router: Router | None) -> PacedRouter | None:
    """``router`` when it is a :class:`PacedRouter` (it has ``observe_spend``), else None."""
    return cast(PacedRouter, router) if callable(getattr(router, "observe_spend", None)) else None


def _embedder_failed(
    runtime: GatewayRuntime, router: str, error: EmbedderUnavailableError, exclude: Sequence[str]
) -> Decision:
    """The decision when ``router`` could not embed the prompt: the configured
    ``embedder_fallback_backend``, unless the request excludes it (``exclude``: its own and the backends
    that cannot serve it); without one it can use, the EmbedderUnavailableError (503) is raised on.
    Counted and logged either way."""
    runtime.metrics.embedder_failures.inc()
    fallback = runtime.settings.embedder_fallback_backend
    if fallback is None or fallback in exclude:
        logger.error(
            "router %s could not embed a prompt; 503%s", router, f" ({fallback} excluded)" if fallback else ""
        )
        raise error
    logger.error("router %s could not embed a prompt; sent to %s", router, fallback)
    return Decision(router, None, (fallback,), (), 0.0)


# 3. call


async def _call(
    request: ChatCompletionRequest,
    backends: dict[str, Backend],
    walker: WalkingRouter | None,
    decision: Decision,
    trace: RequestTrace,
) -> SettledReply:
    """The settled answer: ``walker``'s walk, or else the first of the ranking to answer whole."""

    async def complete(backend: str) -> Reply:
        body = request.upstream_body(backend)
        return await trace.upstream(backends[backend].complete(body))

    if walker is not None:
        prompt = embedding_text(request.prompt_turns())
        walk = await walker.walk(decision, prompt, complete, request.routing or RoutingOptions())
        return _settle_walk(walk, trace)
    name, reply, started = await _fallback(decision, trace, complete)
    return _settle_reply(name, reply, started, trace)


async def _stream(
    request: ChatCompletionRequest, runtime: GatewayRuntime, decision: Decision, trace: RequestTrace
) -> StreamingResponse:
    """The stream of the first of the ranking to send a chunk, relayed; it settles at its last chunk and
    is logged when it ends."""
    backends = runtime.catalog.backends
    name, (first, chunks), started = await _fallback(
        decision, trace, lambda b: _open_stream(backends[b], request.upstream_body(b), trace)
    )
    trace.first_token_seconds = time.perf_counter() - trace.started
    response = relayed_stream(first, chunks, name, started, request, decision, trace, runtime)
    _mark_cache(response, trace)
    return response


async def _fallback(
    decision: Decision, trace: RequestTrace, call: Callable[[str], Awaitable[T]]
) -> tuple[str, T, float]:
    """The first backend of ``decision.ranked`` whose ``call`` succeeds, what it returned, and when
    (``time.perf_counter``) the call started. A failure is noted and the next backend tried; a rejection
    is raised at once, and when every backend failed, ``trace.exhausted()``."""
    for name in decision.ranked:
        started = time.perf_counter()
        try:
            return name, await call(name), started
        except UpstreamRejectedError:
            raise
        except UpstreamError as exc:
            trace.failed(name, exc, time.perf_counter() - started)
    raise trace.exhausted()


async def _open_stream(
    backend: Backend, body: dict[str, Any], trace: RequestTrace
) -> tuple[dict[str, Any], Chunks]:
    """``backend``'s stream of ``body`` once its first chunk arrived (the wait clocked as upstream
    waiting in ``trace``): (that chunk, the rest)."""
    chunks = backend.stream(body)
    return await trace.upstream(anext(chunks)), chunks


# 4. settle


def _settle_reply(backend: str, reply: Reply, started: float, trace: RequestTrace) -> SettledReply:
    """``backend``'s whole ``reply`` to a call begun at ``started``, noted in the trace."""
    trace.answered(backend, reply.cost_usd, time.perf_counter() - started)
    return SettledReply(backend, reply.body, reply.usage, reply.cost_usd)


def _settle_walk(walk: Walk, trace: RequestTrace) -> SettledReply:
    """Each call of ``walk`` noted in the trace, in the walk's order (with its judge's score when it was
    judged; a paid grading as one more, charged to its grader); the kept answer at the walk's whole
    cost. Raises the rejection that ended the walk, or ``trace.exhausted()``, when no answer was kept."""
    for step in walk.steps:
        if step.error is not None:
            trace.failed(step.backend, step.error, step.seconds)
        elif step.reply is not None:
            judgement = step.judgement
            if judgement is None:
                trace.answered(step.backend, step.reply.cost_usd, step.seconds)
                continue
            trace.answered(step.backend, step.reply.cost_usd, step.seconds, judgement.score, judgement.reason)
            if judgement.grader is not None:
                trace.graded(judgement.grader, judgement.cost_usd, step.judge_seconds)
    kept = walk.kept
    if kept is None or kept.reply is None:
        raise walk.rejection or trace.exhausted()
    reply = kept.reply
    plan = walk.plan if isinstance(walk, PlanWalk) else None
    return SettledReply(kept.backend, reply.body, reply.usage, walk.cost_usd, plan, walk_object(walk))


# 5. render


def _render_body(settled: SettledReply, decision: Decision, trace: RequestTrace) -> dict[str, Any]:
    """The completion to send: the upstream's body under the backend's name, its usage (unless the
    upstream gave one) and the ``routing`` object."""
    body = {**settled.body, "model": settled.backend}
    body.setdefault("usage", settled.usage.as_json())
    body["routing"] = routing_object(
        decision,
        settled.backend,
        settled.cost_usd,
        settled.usage,
        trace,
        route=settled.plan,
        **(settled.walk or {}),
    )
    return body


def _render_whole(
    body: dict[str, Any], settled: SettledReply, decision: Decision, trace: RequestTrace, *, as_stream: bool
) -> Response:
    """``body`` as JSON, or (``as_stream``) as the chunks of an SSE stream, with the routing headers."""
    headers = routing_headers(
        decision, settled.backend, trace.request_id, settled.cost_usd, plan=settled.plan
    )
    if as_stream:
        return StreamingResponse(completion_chunks(body), media_type="text/event-stream", headers=headers)
    return FastJSONResponse(body, headers=headers)


def _mark_cache(response: Response, trace: RequestTrace) -> None:
    """Give ``response`` the ``x-routeyard-cache`` header when the request asked the cache: ``hit-exact``,
    ``hit-semantic``, ``miss``, or ``bypass`` (not cacheable)."""
    cache = trace.cache
    if cache is not None:
        response.headers[CACHE_HEADER] = (
            f"hit-{cache['match']}" if cache["hit"] else "miss" if cache["match"] else "bypass"
        )


def _count_overhead(runtime: GatewayRuntime, decision: Decision, seconds: float) -> None:
    """Count the request's overhead of ``seconds`` in the histogram, under the router that decided it."""
    runtime.metrics.observe_overhead(decision.router if decision.routed else None, seconds)


def _carry_overhead(error: GatewayError, trace: RequestTrace) -> None:
    """Make ``error``'s response carry the overhead header, measured now."""
    error.add_headers({OVERHEAD_HEADER: overhead_ms(trace.overhead_seconds(time.perf_counter()))})
