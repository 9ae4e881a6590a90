"""The operators' endpoints: ``GET /metrics`` (Prometheus), ``GET /dashboard`` (a live page over
``GET /v1/stats``) and ``POST /v1/feedback`` (quality feedback).

``/v1/stats`` is this replica's recent requests (``routeyard.gateway.recent_requests``) and, under
``"live"``, every router's live AIQ from its explored requests (``runtime.live_aiq``: the fleet's with
``redis_url``; ``routeyard.evaluation.live_aiq.summary_as_dict``), which ``/metrics`` exports as the
``routeyard_live_*`` gauges and the dashboard draws; under ``"timeline"``, the last hour minute by
minute (``routeyard.gateway.request_timeline``: the fleet's with ``redis_url``), which the dashboard
charts.

``/dashboard`` and ``/v1/stats`` need the admin key (``routeyard.gateway.keys.authentication``; a browser
is asked for it as an HTTP Basic password). So does ``/metrics`` on the API port; with ``metrics_port``
it is served there instead, unauthenticated (the Prometheus convention), and not on the API port.
``/v1/feedback`` takes the key that made the request, or the admin key: a request id is signed to its
key (``routeyard.gateway.keys.request_ids``), so nobody can rate another key's requests (an unknown or
foreign id is a 404). The rater is recorded with the feedback.

Feedback — ``{"request_id": "req_…", "quality": 0.8}`` from a user rating or an evaluator — goes to the
usage log beside the request's record (``routeyard export`` joins them into training data) and is
answered ``202 Accepted`` at once: like records, feedback never waits for Redis. Its body is at most
:data:`MAX_FEEDBACK_BYTES` (a larger one is a 413 ``request_too_large``, read no further).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import HTMLResponse, JSONResponse, Response

from routeyard.evaluation.live_aiq import summary_as_dict
from routeyard.gateway.errors import InvalidRequestError, NotFoundError
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


def add_operations_routes(app: FastAPI, runtime: GatewayRuntime) -> None:
    """Add the operators' endpoints to ``app``, over ``runtime``'s metrics, recent requests and usage log
    (see the module docstring)."""
    metrics, recent, usage_log = runtime.metrics, runtime.recent, runtime.recorder
    authenticator, settings = runtime.authenticator, runtime.settings
    page = resources.files("routeyard.gateway").joinpath("dashboard.html").read_text(encoding="utf-8")

    if settings.metrics_port is None:

        @app.get("/metrics")
        async def prometheus_metrics(request: Request) -> Response:
            authenticator.admin(request.headers)
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/dashboard")
    async def dashboard(request: Request) -> HTMLResponse:
        authenticator.admin(request.headers)
        return HTMLResponse(page)

    @app.get("/v1/stats")
    async def stats(request: Request) -> dict[str, Any]:
        authenticator.admin(request.headers)
        live = {router: summary_as_dict(s) for router, s in runtime.live_aiq.summaries().items()}
        return {**recent.snapshot(), "live": live, "timeline": runtime.timeline.view()}

    @app.post("/v1/feedback", status_code=202)
    async def feedback(request: Request) -> JSONResponse:
        caller = await authenticator.client_or_admin(request.headers)
        raw = await read_body(request, MAX_FEEDBACK_BYTES, "feedback", timeout=settings.body_timeout_seconds)
        try:
            parsed = Feedback.model_validate_json(raw)
        except ValidationError as exc:
            where, message = validation_problems(exc)[0]
            raise InvalidRequestError(f"{where or 'body'}: {message}", param=where or None) from exc
        if not caller.admin and not runtime.request_ids.owned_by(parsed.request_id, caller.client):
            raise NotFoundError(  # 404: whether another key's request exists is not told
                f"no request {parsed.request_id} of this key", param="request_id", code="request_not_found"
            )
        usage_log.feedback(parsed.request_id, parsed.quality, caller.client)
        return JSONResponse(
            {"object": "feedback", "request_id": parsed.request_id, "status": "accepted"}, 202
        )


def watch_state(runtime: GatewayRuntime) -> None:
    """Register in ``runtime``'s metrics those read at scrape time: the catalog's backends' circuit
    breakers, the usage log's buffer and the routers' live AIQ."""
    runtime.metrics.registry.register(_StateCollector(runtime.catalog, runtime.usage_log))
    runtime.metrics.registry.register(_LiveAiqCollector(runtime))


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


_LIVE_PER_ROUTER = {  # metric name: (help, the summary_as_dict path of its value)
    "routeyard_live_aiq": ("Live AIQ of the router's policy on explored requests", ("aiq",)),
    "routeyard_live_zero_aiq": (
        "Live AIQ of the Zero router (the best of always calling one backend) on explored requests",
        ("zero_aiq",),
    ),
    "routeyard_live_regret": (
        "Zero hull's quality at the policy's live cost minus the policy's live quality (< 0: it beats Zero)",
        ("regret",),
    ),
    "routeyard_live_explored_requests": (
        "Explored requests the router's live numbers are estimated from",
        ("policy", "quality", "n"),
    ),
    "routeyard_live_policy_quality": (
        "Live mean quality of the router's own choices",
        ("policy", "quality", "mean"),
    ),
    "routeyard_live_policy_cost_usd": (
        "Live mean $ per request of the router's own choices",
        ("policy", "cost_usd", "mean"),
    ),
}
_LIVE_PER_BACKEND = {
    "routeyard_live_quality": (
        "Estimated mean quality of a backend on the router's traffic",
        ("quality", "mean"),
    ),
    "routeyard_live_quality_low": ("Lower end of that quality's 95 % interval", ("quality", "low")),
    "routeyard_live_quality_high": ("Upper end of that quality's 95 % interval", ("quality", "high")),
    "routeyard_live_cost_usd": (
        "Estimated mean $ per request of a backend on the router's traffic",
        ("cost_usd", "mean"),
    ),
}


class _LiveAiqCollector(Collector):
    """The ``routeyard_live_*`` gauges of every router's live summary, read at scrape time; a value that
    is not yet known (None in ``summary_as_dict``: NaN or an infinite interval) is left out."""

    def __init__(self, runtime: GatewayRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        live = {router: summary_as_dict(s) for router, s in self.runtime.live_aiq.summaries().items()}
        for name, (documentation, path) in _LIVE_PER_ROUTER.items():
            family = GaugeMetricFamily(name, documentation, labels=["router"])
            for router, summary in live.items():
                _add_known(family, [router], _at(summary, path))
            yield family
        for name, (documentation, path) in _LIVE_PER_BACKEND.items():
            family = GaugeMetricFamily(name, documentation, labels=["router", "backend"])
            for router, summary in live.items():
                for backend, point in summary["backends"].items():
                    _add_known(family, [router, backend], _at(point, path))
            yield family

    def describe(self) -> Iterable[Metric]:
        return self.collect()


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    """``tree[path[0]][path[1]]…``, or None where a step is None."""
    for key in path:
        if tree is None:
            return None
        tree = tree[key]
    return tree


def _add_known(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, float(value))
