"""Prometheus metrics of one gateway, on a registry the app owns (``GET /metrics``).

:meth:`GatewayMetrics.record` turns each request's :class:`gateway.usage.RouteRecord` into counters and
histograms; the state read at scrape time (circuit breakers, the usage log's buffer) is collected by
``routeyard.gateway.operations``.
Names follow Prometheus conventions: ``routeyard_…_total`` counters, base units (``_seconds``, ``_usd``).
Labels are backend, router, status and token-kind names only — never prompts or keys. A request no
router decided (it named a backend, or was refused before routing) counts with router ``direct``
(:data:`gateway.usage.DIRECT_ROUTER`, as in ``/v1/stats`` and the exported table); one no backend
answered, with backend ``none``. A paced router's w, spend rate, target and pacing-store failures are
read at scrape time once it has decided a request (:meth:`GatewayMetrics.watch_pacing`). The gateway's
own time per request (``routeyard_overhead_seconds``) is told by the request lifecycle as it renders
(:meth:`GatewayMetrics.observe_overhead`; a stream's when it ends), not read from the record.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routeyard.gateway.router import PacedRouter
from routeyard.gateway.usage import DIRECT_ROUTER, ExplorationRecord, RouteRecord

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# the gateway's own time per request is mostly well under 10 ms: finer there
_OVERHEAD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
)  # fmt: skip
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
        self.overhead = Histogram(
            "routeyard_overhead_seconds",
            "The gateway's own time per request (routing, judging, relaying), upstream waiting excluded",
            ["router"],
            buckets=_OVERHEAD_BUCKETS,
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
        self.explored_answers = Counter(
            "routeyard_explored_answers_total",
            "Graded answers of explored requests (the client's and the other candidate's)",
            ["router", "backend", "chosen"],
            registry=r,
        )
        self.exploration_cost = Counter(
            "routeyard_exploration_cost_usd_total",
            "$ spent exploring: the other candidates' answers and every grading",
            ["router"],
            registry=r,
        )
        self.exploration_skipped = Counter(
            "routeyard_exploration_skipped_total",
            "Requests drawn for exploration but not explored, or whose exploration failed, by reason",
            ["router", "reason"],
            registry=r,
        )
        self.cache_requests = Counter(
            "routeyard_cache_requests_total",
            "Requests that asked the response cache, by result: hit_exact, hit_semantic, miss, or bypass "
            "(not cacheable: not deterministic, tools, several choices)",
            ["result"],
            registry=r,
        )
        self.affinity_requests = Counter(
            "routeyard_affinity_requests_total",
            "Routed requests continuing a session, by outcome: decided (sent to the session's backend), "
            "new (no backend remembered) or moved (its backend excluded or not ranked)",
            ["outcome"],
            registry=r,
        )
        self._overhead_of: dict[str, Histogram] = {}
        self._paced: dict[str, PacedRouter] = {}
        r.register(_PacingCollector(self._paced))

    def watch_pacing(self, router: PacedRouter) -> None:
        """Export ``router``'s pacing from now on (idempotent; cheap enough to call per request)."""
        self._paced[router.name] = router

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

    def observe_overhead(self, router: str | None, seconds: float) -> None:
        """Count the overhead of one request decided by ``router`` (None: none did, ``direct``), in s
        (defined in ``routeyard.gateway.explanation``)."""
        name = router or DIRECT_ROUTER
        child = self._overhead_of.get(name)
        if child is None:  # labels() takes a lock and builds a key: once per router, not per request
            child = self._overhead_of[name] = self.overhead.labels(name)
        child.observe(seconds)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        """Count one quality feedback."""
        self.feedbacks.inc()

    def explored(self, record: ExplorationRecord) -> None:
        """Count one explored answer and what exploring spent on it (the client's own answer was counted
        with its request; only its grading is exploration's)."""
        self.explored_answers.labels(record.router, record.backend, "1" if record.chosen else "0").inc()
        spent = (0.0 if record.chosen else record.cost_usd) + record.grading_cost_usd
        self.exploration_cost.labels(record.router).inc(spent)
        if not record.chosen:
            self.cost.labels(record.backend).inc(record.cost_usd)

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


class _PacingCollector(Collector):
    """Each watched paced router's gauges, read at scrape time."""

    def __init__(self, paced: dict[str, PacedRouter]) -> None:
        self.paced = paced

    def collect(self) -> Iterable[Metric]:
        w = GaugeMetricFamily(
            "routeyard_pacing_willingness_to_pay",
            "A paced router's current willingness to pay ($ per unit of quality)",
            labels=["router"],
        )
        spend = GaugeMetricFamily(
            "routeyard_pacing_spend_usd_per_second",
            "A paced router's recent spend rate (exponential average over its response time)",
            labels=["router"],
        )
        target = GaugeMetricFamily(
            "routeyard_pacing_target_usd_per_second", "A paced router's spend target", labels=["router"]
        )
        failures = CounterMetricFamily(
            "routeyard_pacing_store_failures",
            "Exchanges of a paced router with its state store (Redis) that failed; it kept its last w",
            labels=["router"],
        )
        for name, router in list(self.paced.items()):
            reading = router.pacing()
            w.add_metric([name], reading.willingness_to_pay)
            spend.add_metric([name], reading.spend_usd_per_second)
            target.add_metric([name], reading.target_usd_per_second)
            failures.add_metric([name], reading.store_failures)
        yield from (w, spend, target, failures)

    def describe(self) -> Iterable[Metric]:
        return self.collect()
