"""The FastAPI application: endpoints, authentication, body limits, and the one place errors are rendered.

``create_app(settings)`` builds everything (nothing happens at import); the app's state is one
:class:`routeyard.gateway.runtime.GatewayRuntime` (``runtime_of(app)``). Endpoints:
``POST /v1/chat/completions`` (served by ``routeyard.gateway.request_lifecycle`` once authorised, read and
parsed here), ``GET /v1/models``, ``GET /healthz`` (the process serves),
``GET /readyz`` (every router's predictor is loaded); the operators' endpoints (``/metrics``,
``/dashboard``, ``/v1/stats``, ``/v1/feedback``) are in ``routeyard.gateway.operations``. Routers load in the
background after start-up; until then requests naming a backend are served and requests naming a
router get 503 ``not_ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import logging
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeyard.gateway.assembly import build_backends, load_routers
from routeyard.gateway.backends.http_transport import pooled_transport
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    NotReadyError,
    UnsupportedMediaTypeError,
)
from routeyard.gateway.fast_json import FastJSONResponse, JSONDecodeError, loads, nested_deeper_than
from routeyard.gateway.model_catalog import AUTO_MODEL
from routeyard.gateway.operations import add_operations_routes, watch_state
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.request_lifecycle import serve_completion
from routeyard.gateway.request_trace import RequestTrace, log_refusal
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.settings import GatewaySettings
from routeyard.gateway.usage import InMemoryUsageLog, UsageLog
from routeyard.gateway.wire import ChatCompletionRequest, read_body
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.validation import validation_problems

logger = logging.getLogger("routeyard.gateway")
MAX_NESTING = 64
"""Deepest nesting of objects and arrays a request body may have (a deeper one is a 400)."""


def create_app(
    settings: GatewaySettings,
    *,
    embedder: Embedder | None = None,
    usage_log: UsageLog | None = None,
    load_before_serving: bool = False,
) -> FastAPI:
    """The gateway for ``settings``; ``embedder`` (default: ``settings.embedder``) embeds prompts for
    routers, ``usage_log`` (default: Redis at ``settings.redis_url``, else in memory) receives one record
    per request and the quality feedbacks. Its state is ``runtime_of(app)``
    (``routeyard.gateway.runtime``).

    By default the app serves at once and loads its routers in the background (``/healthz`` answers,
    backends are served, routers get 503 until loaded). With ``load_before_serving`` its start-up waits
    for the routers (loaded or failed) before the server accepts a connection: a worker sharing a socket
    with others then takes no request that it would refuse while they could answer it."""
    runtime = GatewayRuntime(settings, usage_log if usage_log is not None else _usage_log(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with pooled_transport() as pool:
            # off the loop: a replay backend reads its table here
            runtime.catalog.backends.update(await asyncio.to_thread(build_backends, settings, pool))
            if isinstance(runtime.usage_log, RedisUsageLog):
                await runtime.usage_log.start()
            gc.freeze()  # again once the routers load (see _load_routers)
            loading = asyncio.create_task(_load_routers(runtime, embedder))
            if load_before_serving:
                await loading
            yield
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            if runtime.batcher is not None:
                await runtime.batcher.close()
            if isinstance(runtime.usage_log, RedisUsageLog):
                await runtime.usage_log.close()

    app = FastAPI(title="routeyard", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(InternalErrors)
    app.state.runtime = runtime
    _add_error_handlers(app)
    keys = settings.client_keys()
    add_operations_routes(app, runtime, lambda request: _authorize(request, keys))
    watch_state(runtime)

    async def chat_completions(request: Request) -> Response:
        trace = RequestTrace(
            f"req_{uuid.uuid4().hex}", time.perf_counter(), keep_prompt=settings.store_prompts
        )
        try:
            trace.client = _authorize(request, keys)
            _require_json(request)
            parsed = _parse(await read_body(request, settings.max_body_bytes))
            return await serve_completion(parsed, runtime, trace)
        except (InvalidRequestError, AuthenticationError, NotReadyError) as exc:
            # refused before any backend was called: counted here (upstream failures were logged with
            # their attempts by the lifecycle)
            log_refusal(runtime.refusals, trace, exc.status)
            raise

    # a plain Starlette route: FastAPI's dependency solving took ≈ 10 % of a passthrough request's CPU
    app.router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _authorize(request, keys)
        catalog = runtime.catalog
        entries = [_model_entry(name, "backend") for name in catalog.backends]
        entries += [_model_entry(name, "router") for name in sorted(catalog.router_names)]
        if catalog.default_router:
            entries.append(_model_entry(AUTO_MODEL, "router", default=catalog.default_router))
        return {"object": "list", "data": entries}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        if not runtime.ready:
            raise NotReadyError(f"not ready: {runtime.not_ready_reason}")
        return {"status": "ready"}

    return app


async def _load_routers(runtime: GatewayRuntime, embedder: Embedder | None) -> None:
    """Load the embedder (unless given), the batcher and every router into ``runtime``, then mark it
    ready; a failure is logged and becomes the not-ready reason (backends are still served)."""
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
        )
        catalog = runtime.catalog
        catalog.routers.update(
            await asyncio.to_thread(load_routers, settings, runtime.batcher, catalog.backends)
        )
        runtime.ready = True
        gc.freeze()  # start-up's objects (models, tables) leave the collector: no 150 ms gen-2 pauses
        logger.info("routers loaded: %s", ", ".join(catalog.routers))
    except Exception as exc:  # a broken artifact must not kill the process that serves backends
        runtime.not_ready_reason = f"loading the routers failed: {exc}"
        logger.error("loading the routers failed: %s", exc)


def _usage_log(settings: GatewaySettings) -> UsageLog:
    if settings.redis_url is None:
        return InMemoryUsageLog()
    return RedisUsageLog(
        settings.redis_url,
        buffer_size=settings.usage_buffer_size,
        max_stream_length=settings.usage_stream_max_length,
    )


def _authorize(request: Request, keys: frozenset[str]) -> str | None:
    """The id of the client's key (a hash prefix; None without keys); raises AuthenticationError."""
    if not keys:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        raise AuthenticationError("missing or invalid API key: send `Authorization: Bearer <key>`")
    return "key_" + hashlib.sha256(token.encode()).hexdigest()[:12]


def _require_json(request: Request) -> None:
    """Raise UnsupportedMediaTypeError (415) unless the body is declared JSON (``application/json``,
    parameters such as ``charset`` allowed)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError(
            "the request body must be JSON, sent with `Content-Type: application/json`"
        )


def _parse(raw: bytes) -> ChatCompletionRequest:
    try:
        data = loads(raw)
    except JSONDecodeError as exc:  # invalid JSON or UTF-8, a lone surrogate, nested past 1,024
        raise InvalidRequestError("the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    if nested_deeper_than(data, MAX_NESTING):
        raise InvalidRequestError(f"the request body is nested deeper than {MAX_NESTING} levels")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        where, message = validation_problems(exc)[0]
        raise InvalidRequestError(f"{where}: {message}", param=where or None) from exc


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
        return FastJSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> FastJSONResponse:
        error = GatewayError(str(exc.detail), code=f"http_{exc.status_code}")
        error.type = "invalid_request_error"
        return FastJSONResponse(error.body(), status_code=exc.status_code)


class InternalErrors:
    """ASGI middleware: an exception nothing else handled becomes a 500 OpenAI error.

    Only the exception's type and frames are logged, never its message (it might quote a prompt or a
    response). Starlette's own last-resort handler would re-raise after answering, and the server would
    log the whole exception; this one stops it here. After the response has started nothing can be sent
    any more: the exception is logged and the response ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.error(
                "internal error %s at\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if not started:
                await FastJSONResponse(GatewayError("internal error").body(), status_code=500)(
                    scope, receive, send
                )
