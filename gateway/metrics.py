"""Prometheus metrics of one gateway, on a registry the app owns (``GET /metrics``).

:meth:`GatewayMetrics.record` turns each request's :class:`gateway.usage.RouteRecord` into counters and
histograms; the state read at scrape time (circuit breakers, the usage log's buffer) is collected by
``routeyard.gateway.operations``.
Names follow Prometheus conventions: ``routeyard_…_total`` counters, base units (``_seconds``, ``_usd``).
Labels are backend, router, status and token-kind names only — never prompts or keys. A request no
router decided (it named a backend, or was refused before routing) counts with router ``direct``
(:data:`gateway.usage.DIRECT_ROUTER`, as in ``/v1/stats`` and the exported table); one no backend
answered, with backend ``none``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from routeyard.gateway.usage import DIRECT_ROUTER, RouteRecord

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_SCORE_BUCKETS = tuple(i / 10 for i in range(11))
NO_BACKEND = "none"  # the backend label of requests no backend answered


class GatewayMetrics:
    """Every metric of the gateway (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "routeyard_requests_total",
            "Chat completion requests answered",
            ["router", "backend", "status"],
            registry=r,
        )
        self.cost = Counter(
            "routeyard_cost_usd_total", "$ spent upstream, by backend", ["backend"], registry=r
        )
        self.tokens = Counter(
            "routeyard_tokens_total", "Tokens by backend and kind", ["backend", "kind"], registry=r
        )
        self.saved = Counter(
            "routeyard_saved_usd_total",
            "Estimated $ saved against calling the dearest predicted backend for every routed request",
            ["router"],
            registry=r,
        )
        self.routing = Histogram(
            "routeyard_routing_seconds",
            "Routing overhead: embed, predict, decide",
            ["router"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "routeyard_upstream_seconds",
            "One upstream call",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.total = Histogram(
            "routeyard_request_seconds",
            "Whole request, end to end",
            ["router"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "routeyard_time_to_first_token_seconds",
            "Streams: until the first chunk",
            ["backend"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.predicted_quality = Histogram(
            "routeyard_predicted_quality",
            "Predicted quality of the chosen backend",
            ["router"],
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.judge_score = Histogram(
            "routeyard_judge_score",
            "Judge scores of cascade answers",
            ["router"],
            buckets=_SCORE_BUCKETS,
            registry=r,
        )
        self.escalations = Counter(
            "routeyard_cascade_escalations_total", "Cascade calls beyond the first", ["router"], registry=r
        )
        self.feedbacks = Counter("routeyard_feedback_total", "Quality feedbacks received", registry=r)
        self.embedder_failures = Counter(
            "routeyard_embedder_failures_total",
            "Prompts a router could not embed (503 or fallback)",
            registry=r,
        )
        self.fallbacks = Counter(
            "routeyard_fallbacks_total",
            "Upstream calls that failed and were tried elsewhere or given up",
            ["backend"],
            registry=r,
        )

    def record(self, record: RouteRecord) -> None:
        """Count one request (never raises for a well-formed record)."""
        router = record.router or DIRECT_ROUTER
        self.requests.labels(router, record.backend or NO_BACKEND, str(record.status)).inc()
        self.total.labels(router).observe(record.total_seconds)
        if record.router is not None:
            self.routing.labels(router).observe(record.routing_seconds)
        if record.predicted_quality is not None:
            self.predicted_quality.labels(router).observe(record.predicted_quality)
        if record.backend is not None:
            self.tokens.labels(record.backend, "prompt").inc(record.prompt_tokens)
            self.tokens.labels(record.backend, "completion").inc(record.completion_tokens)
        if record.first_token_seconds is not None and record.backend is not None:
            self.first_token.labels(record.backend).observe(record.first_token_seconds)
        if record.dearest_predicted_cost_usd is not None and record.status == 200:
            self.saved.labels(router).inc(max(record.dearest_predicted_cost_usd - record.cost_usd, 0.0))
        self._attempts(record, router)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        """Count one quality feedback."""
        self.feedbacks.inc()

    def _attempts(self, record: RouteRecord, router: str) -> None:
        for attempt in record.attempts:
            self.upstream.labels(attempt.backend).observe(attempt.latency_seconds)
            self.cost.labels(attempt.backend).inc(attempt.cost_usd)
            if attempt.status == "judge":  # a cascade's grading call: paid and timed, not an answer
                continue
            if attempt.status != "ok":
                self.fallbacks.labels(attempt.backend).inc()
                continue
            if attempt.score is not None:
                self.judge_score.labels(router).observe(attempt.score)
        judged = sum(a.score is not None for a in record.attempts)  # answers; failovers are not escalations
        if judged:
            self.escalations.labels(router).inc(judged - 1)
