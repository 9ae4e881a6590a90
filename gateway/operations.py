"""The operators' endpoints: ``GET /metrics`` (Prometheus), ``GET /dashboard`` (a live page over
``GET /v1/stats``) and ``POST /v1/feedback`` (quality feedback).

``/metrics``, ``/dashboard`` and ``/v1/stats`` carry no prompt and no key and need no client key, like
``/healthz``: keep them on an operators' network. ``/v1/feedback`` takes the client keys, like the API.

Feedback — ``{"request_id": "req_…", "quality": 0.8}`` from a user rating or an evaluator — goes to the
usage log beside the request's record (``routeyard export`` joins them into training data) and is
answered ``202 Accepted`` at once: like records, feedback never waits for Redis. Its body is at most
:data:`MAX_FEEDBACK_BYTES` (a larger one is a 413 ``request_too_large``, read no further).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, Response

from routeyard.gateway.errors import InvalidRequestError
from routeyard.gateway.model_catalog import ModelCatalog
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.usage import UsageLog
from routeyard.gateway.wire import read_body
from routeyard.validation import validation_problems

MAX_FEEDBACK_BYTES = 4096  # a feedback is ~80 bytes of JSON


class Feedback(BaseModel):
    """``POST /v1/feedback``: a quality in [0, 1] for an earlier request."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=r"^req_[0-9a-f]{32}$")
    quality: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)


def add_operations_routes(app: FastAPI, runtime: GatewayRuntime, authorize: Callable[[Request], Any]) -> None:
    """Add the operators' endpoints to ``app``, over ``runtime``'s metrics, recent requests and usage log
    (see the module docstring); ``authorize(request)`` raises for a client without a valid key."""
    metrics, recent, usage_log = runtime.metrics, runtime.recent, runtime.recorder
    page = resources.files("routeyard.gateway").joinpath("dashboard.html").read_text(encoding="utf-8")

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/dashboard")
    async def dashboard() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/v1/stats")
    async def stats() -> dict[str, Any]:
        return recent.snapshot()

    @app.post("/v1/feedback", status_code=202)
    async def feedback(request: Request) -> JSONResponse:
        authorize(request)
        try:
            parsed = Feedback.model_validate_json(await read_body(request, MAX_FEEDBACK_BYTES, "feedback"))
        except ValidationError as exc:
            where, message = validation_problems(exc)[0]
            raise InvalidRequestError(f"{where or 'body'}: {message}", param=where or None) from exc
        usage_log.feedback(parsed.request_id, parsed.quality)
        return JSONResponse(
            {"object": "feedback", "request_id": parsed.request_id, "status": "accepted"}, 202
        )


def watch_state(runtime: GatewayRuntime) -> None:
    """Register in ``runtime``'s metrics those read at scrape time: the catalog's backends' circuit
    breakers and the usage log's buffer."""
    runtime.metrics.registry.register(_StateCollector(runtime.catalog, runtime.usage_log))


class _StateCollector(Collector):
    def __init__(self, catalog: ModelCatalog, usage_log: UsageLog) -> None:
        self.catalog = catalog
        self.usage_log = usage_log

    def collect(self) -> Iterable[Metric]:
        breakers = GaugeMetricFamily(
            "routeyard_circuit_breaker_open",
            "1 while a backend's circuit breaker skips it",
            labels=["backend"],
        )
        for name, backend in self.catalog.backends.items():
            breaker = getattr(backend, "breaker", None)
            if breaker is not None:
                breakers.add_metric([name], 0.0 if breaker.state == "closed" else 1.0)
        yield breakers
        redis_log = self.usage_log if isinstance(self.usage_log, RedisUsageLog) else None
        yield GaugeMetricFamily(
            "routeyard_usage_log_buffered",
            "Usage records waiting to be written",
            value=redis_log.buffered if redis_log else 0,
        )
        yield CounterMetricFamily(
            "routeyard_usage_log_dropped",
            "Usage log entries lost: no room in the buffer, refused by Redis, or unwritten at shutdown",
            value=redis_log.dropped if redis_log else 0,
        )

    def describe(self) -> Iterable[Metric]:
        return self.collect()
