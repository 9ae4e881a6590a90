"""The FastAPI application: endpoints, the order of a request's checks, and the one place errors are rendered.

``create_app(settings)`` builds everything (nothing happens at import); the app's state is one
:class:`routeyard.gateway.runtime.GatewayRuntime` (``runtime_of(app)``). Endpoints:
``POST /v1/chat/completions`` (the caller authenticated by ``routeyard.gateway.keys.authentication``, the
body read under its size limit and deadline, parsed by ``routeyard.gateway.request_parsing``, then served
by ``routeyard.gateway.request_lifecycle``), ``POST /v1/messages`` and ``POST /v1/responses`` (the same
in other dialects: ``routeyard.gateway.front_doors``), ``GET /v1/models`` (what the caller's key may use),
``GET /healthz`` (the process serves), ``GET /readyz`` (every router's predictor is loaded); the
operators' endpoints (``/metrics``, ``/dashboard``, ``/v1/stats``, ``/v1/feedback``) are in
``routeyard.gateway.operations``, ``/admin/keys`` and ``/admin/reload`` in ``routeyard.gateway.admin_routes``
(the reload itself: ``routeyard.gateway.policy_reload``). Middleware:
``concurrency_limit`` (503 past ``limit_concurrency``) and ``internal_errors`` (the last-resort 500);
when tracing (``otlp_endpoint``, or a ``tracer_provider`` given), outermost,
``tracing.request_spans.RequestSpans``.
Routers load in the background after start-up; until then requests naming a backend are served and
requests naming a router get 503 ``not_ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from routeyard.gateway.admin_routes import add_admin_routes
from routeyard.gateway.assembly import build_backends, load_routers
from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.concurrency_limit import ConcurrencyLimit
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.errors import (
    GatewayError,
    NotReadyError,
)
from routeyard.gateway.fast_json import FastJSONResponse
from routeyard.gateway.front_doors import add_front_door_routes
from routeyard.gateway.internal_errors import InternalErrors
from routeyard.gateway.keys.key_store_choice import open_key_store
from routeyard.gateway.keys.virtual_key import KeyLimits
from routeyard.gateway.live_aiq_store import InMemoryLiveAiq, RedisLiveAiq
from routeyard.gateway.metrics_server import MetricsServer, start_metrics_server
from routeyard.gateway.model_catalog import AUTO_MODEL, ModelCatalog
from routeyard.gateway.operations import add_operations_routes, watch_state
from routeyard.gateway.policy_reload import PolicyReloader
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.request_lifecycle import serve_completion
from routeyard.gateway.request_parsing import parse_off_loop, require_json
from routeyard.gateway.request_timeline import RedisRequestTimeline
from routeyard.gateway.request_trace import RequestTrace, log_refusal
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.settings import GatewaySettings
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.provider import gateway_tracer, stop_tracing, tracer_provider_for
from routeyard.gateway.tracing.request_spans import RequestSpans
from routeyard.gateway.usage import InMemoryUsageLog, UsageLog
from routeyard.gateway.wire import read_body
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedder_choice import make_embedder

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

logger = logging.getLogger("routeyard.gateway")
_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # answered also when limit_concurrency is reached
GC_THRESHOLDS = (20_000, 10, 10)
"""The collector's thresholds while serving (CPython's default: 700, 10, 10). A request allocates
hundreds of container objects; at 700, collections ran every request or two and promoted the objects of
the requests in flight, so a full collection followed every ≈ 0.6 s: ≈ 120 µs of a passthrough
request's ≈ 1 ms of CPU went to the collector, ≈ 20 µs at these (``benchmarks/RESULTS.md``, issue 18)."""


def create_app(
    settings: GatewaySettings,
    *,
    embedder: Embedder | None = None,
    usage_log: UsageLog | None = None,
    load_before_serving: bool = False,
    config_path: Path | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The gateway for ``settings``; ``embedder`` (default: ``settings.embedder``) embeds prompts for
    routers, ``usage_log`` (default: Redis at ``settings.redis_url``, else in memory) receives one record
    per request and the quality feedbacks. Its state is ``runtime_of(app)``
    (``routeyard.gateway.runtime``).

    By default the app serves at once and loads its routers in the background (``/healthz`` answers,
    backends are served, routers get 503 until loaded). With ``load_before_serving`` its start-up waits
    for the routers (loaded or failed) before the server accepts a connection: a worker sharing a socket
    with others then takes no request that it would refuse while they could answer it.

    ``config_path`` is the file ``settings`` were loaded from: ``POST /admin/reload`` and SIGHUP reload
    the routers from it, gated by replay (without it they answer 409 ``reload_not_configured``).

    ``tracer_provider`` traces the gateway (``routeyard.gateway.tracing``; flushed when it stops, shut
    down by its owner); without it, ``settings.otlp_endpoint`` makes one (shut down when it stops), and
    with neither nothing is traced or set up. The tracer is ``app.state.tracer`` (None: untraced)."""
    runtime = GatewayRuntime(
        settings,
        usage_log if usage_log is not None else _usage_log(settings),
        key_store=open_key_store(settings) if settings.virtual_keys else None,
        live_aiq=RedisLiveAiq(settings.redis_url) if settings.redis_url else InMemoryLiveAiq(),
    )
    runtime.reloader = PolicyReloader(runtime, config_path)
    provider = tracer_provider if tracer_provider is not None else tracer_provider_for(settings)
    tracer = gateway_tracer(provider) if provider is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics_server = _start_metrics_server(runtime)  # first: a port taken fails the start at once
        try:
            async with _serving(runtime, embedder, load_before_serving, tracer):
                yield
        finally:
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.close)
            if provider is not None:
                await stop_tracing(provider, owned=tracer_provider is None)

    app = FastAPI(title="routeyard", lifespan=lifespan, docs_url=None, redoc_url=None)
    if settings.limit_concurrency is not None:
        app.add_middleware(ConcurrencyLimit, limit=settings.limit_concurrency, exempt=_PROBES)
    app.add_middleware(InternalErrors)
    if tracer is not None:  # outermost: its span sees every response, the last-resort 500 too
        app.add_middleware(RequestSpans, tracer=tracer)
    app.state.runtime = runtime
    app.state.tracer = tracer
    _add_error_handlers(app)
    add_operations_routes(app, runtime)
    add_admin_routes(app, runtime, runtime.reloader)
    watch_state(runtime)

    async def chat_completions(request: Request) -> Response:
        trace = RequestTrace(
            runtime.request_ids.new(None), time.perf_counter(), keep_prompt=settings.store_prompts
        )
        try:
            caller = await runtime.authenticator.client(request.headers)
            if caller.client is not None:
                trace.client, trace.request_id = caller.client, runtime.request_ids.new(caller.client)
            require_json(request)
            raw = await read_body(request, settings.max_body_bytes, timeout=settings.body_timeout_seconds)
            parsed = await parse_off_loop(raw, settings.max_messages)
            return await serve_completion(parsed, runtime, trace, caller.key)
        except GatewayError as exc:
            if not trace.logged:  # refused before any backend was called: counted here
                log_refusal(runtime.refusals, trace, exc.status)
            raise

    # a plain Starlette route: FastAPI's dependency solving took ≈ 10 % of a passthrough request's CPU
    app.router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    add_front_door_routes(app, runtime)  # /v1/messages and /v1/responses, served the same way

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        caller = await runtime.authenticator.client(request.headers)
        return {"object": "list", "data": _models(runtime.catalog, caller.key.limits if caller.key else None)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        if not runtime.ready:
            raise NotReadyError(f"not ready: {runtime.not_ready_reason}")  # never exception text
        return {"status": "ready"}

    return app


@contextlib.asynccontextmanager
async def _serving(
    runtime: GatewayRuntime, embedder: Embedder | None, load_before_serving: bool, tracer: Tracer | None
) -> AsyncIterator[None]:
    """Backends, the usage log's writer and (in the background, or first with ``load_before_serving``)
    the routers, for as long as the block runs; then everything closed in turn. ``tracer``: traced
    backends and routers (None: untraced)."""
    settings = runtime.settings
    async with ConnectionPools() as pools:
        # off the loop: a replay backend reads its table here
        runtime.catalog.backends.update(await asyncio.to_thread(build_backends, settings, pools, tracer))
        if isinstance(runtime.usage_log, RedisUsageLog):
            await runtime.usage_log.start()
        if isinstance(runtime.live_aiq, RedisLiveAiq):
            await runtime.live_aiq.start()
        if isinstance(runtime.timeline, RedisRequestTimeline):
            await runtime.timeline.start()
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()  # again once the routers load (see _load_routers)
        if runtime.reloader is not None:
            runtime.reloader.bind(asyncio.get_running_loop())  # SIGHUP schedules its reload here
        loading = asyncio.create_task(_load_routers(runtime, embedder, tracer))
        if load_before_serving:
            await loading
        yield
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
        await runtime.explorer.close()  # explorations in flight: a short wait, then cancelled
        if runtime.batcher is not None:
            await runtime.batcher.close()
        if isinstance(runtime.usage_log, RedisUsageLog):
            await runtime.usage_log.close()
        if isinstance(runtime.live_aiq, RedisLiveAiq):
            await runtime.live_aiq.close()
        if isinstance(runtime.timeline, RedisRequestTimeline):
            await runtime.timeline.close()
        if runtime.keys is not None:
            await runtime.keys.close()
        if runtime.key_store is not None:
            await runtime.key_store.close()
        if runtime.affinity is not None:
            await runtime.affinity.close()
        await runtime.response_cache.close()


def _start_metrics_server(runtime: GatewayRuntime) -> MetricsServer | None:
    """``/metrics`` on its own port when ``metrics_port`` is set (unauthenticated there), else None."""
    settings = runtime.settings
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host or "127.0.0.1"
    return start_metrics_server(runtime.metrics.registry, host, settings.metrics_port)


async def _load_routers(runtime: GatewayRuntime, embedder: Embedder | None, tracer: Tracer | None) -> None:
    """Load the embedder (unless given), the batcher (holding ``tracer``, so the routers built over it
    trace) and every router into ``runtime``, then mark it ready; a failure is logged and becomes the
    not-ready reason (backends are still served)."""
    settings = runtime.settings
    if not settings.routers:
        return
    try:
        if embedder is None:
            embedder = await asyncio.to_thread(
                make_embedder,
                settings.embedder,
                settings.cache_dir.expanduser(),
                cached=False,  # not the on-disk cache: the batcher keeps a bounded one in memory
                threads=settings.embedder_threads,
            )
        runtime.batcher = EmbeddingBatcher(
            embedder,
            window=settings.batch_window_ms / 1000.0,
            max_batch=settings.max_batch,
            cache_size=settings.embedding_cache_size,
            tracer=tracer,
        )
        catalog = runtime.catalog
        routers = await asyncio.to_thread(load_routers, settings, runtime.batcher, catalog.backends)
        catalog.install(routers, settings.default_router)
        runtime.ready = True
        gc.freeze()  # start-up's objects (models, tables) leave the collector: no 150 ms gen-2 pauses
        logger.info("routers loaded: %s", ", ".join(catalog.routers))
    except Exception as exc:  # a broken artifact must not kill the process that serves backends
        runtime.not_ready_reason = f"loading the routers failed ({type(exc).__name__}; see the gateway's log)"
        logger.error("loading the routers failed: %s", exc)


def _usage_log(settings: GatewaySettings) -> UsageLog:
    if settings.redis_url is None:
        return InMemoryUsageLog()
    return RedisUsageLog(
        settings.redis_url,
        buffer_size=settings.usage_buffer_size,
        max_stream_length=settings.usage_stream_max_length,
    )


def _models(catalog: ModelCatalog, limits: KeyLimits | None) -> list[dict[str, Any]]:
    """``GET /v1/models``' entries: the backends and routers a key with ``limits`` may use (None: all)."""
    backends = [
        b for b in catalog.backends if limits is None or limits.backends is None or b in limits.backends
    ]
    routers = sorted(catalog.router_names)
    if limits is not None and limits.routers is not None:
        routers = [r for r in routers if r in limits.routers]
    entries = [_model_entry(name, "backend") for name in backends]
    entries += [_model_entry(name, "router") for name in routers]
    if catalog.default_router and (catalog.default_router in routers or catalog.default_router in backends):
        entries.append(_model_entry(AUTO_MODEL, "router", default=catalog.default_router))
    return entries


def _model_entry(name: str, kind: str, **extra: str) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "routeyard",
        "routeyard": {"kind": kind, **extra},
    }


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> FastJSONResponse:
        return FastJSONResponse(exc.body(), status_code=exc.status, headers=exc.response_headers())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> FastJSONResponse:
        error = GatewayError(str(exc.detail), code=f"http_{exc.status_code}")
        error.type = "invalid_request_error"
        return FastJSONResponse(error.body(), status_code=exc.status_code)
