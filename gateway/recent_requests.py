"""What this gateway process did lately, summed up for the ops dashboard (``GET /v1/stats``).

:class:`RecentRequests` is one more usage log: it keeps the last ``capacity`` records in memory and
:meth:`RecentRequests.snapshot` summarises them — routing mix, spend and estimated savings, predicted
quality, latency percentiles, errors — as JSON-ready numbers. It describes one replica; the Redis
counters and Prometheus describe the fleet.
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

from routeyard.gateway.usage import DIRECT_ROUTER, ExplorationRecord, RouteRecord


class RecentRequests:
    """The last ``capacity`` records (see the module docstring)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.records: collections.deque[RouteRecord] = collections.deque(maxlen=capacity)
        self.feedbacks = 0
        self.started = time.time()

    def record(self, record: RouteRecord) -> None:
        self.records.append(record)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        self.feedbacks += 1

    def explored(self, record: ExplorationRecord) -> None:
        """Explored answers are summed by the live AIQ, not here."""

    def snapshot(self) -> dict[str, Any]:
        """The summary the dashboard draws (every $ in USD, every latency in ms)."""
        records = list(self.records)
        answered = [r for r in records if r.status == 200]
        latencies = np.array([r.total_seconds * 1000.0 for r in answered])
        quality = [r.predicted_quality for r in answered if r.predicted_quality is not None]
        saved = sum(
            max(r.dearest_predicted_cost_usd - r.cost_usd, 0.0)
            for r in answered
            if r.dearest_predicted_cost_usd is not None
        )
        return {
            "uptime_seconds": round(time.time() - self.started, 1),
            "requests": len(records),
            "errors": len(records) - len(answered),
            "errors_by_status": _counts(str(r.status) for r in records if r.status != 200),
            "by_backend": _counts(r.backend for r in answered if r.backend),
            "by_router": _counts(r.router or DIRECT_ROUTER for r in answered),
            "spend_usd": sum(r.cost_usd for r in records),
            "saved_usd": saved,
            "mean_predicted_quality": float(np.mean(quality)) if quality else None,
            "latency_ms": _percentiles(latencies),
            "feedbacks": self.feedbacks,
        }


def _counts(names: Any) -> dict[str, int]:
    return dict(collections.Counter(names).most_common())


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if len(values) == 0:
        return {"p50": None, "p95": None, "p99": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}
