"""How every reply explains itself: the ``routing`` body object and the ``x-routeyard-*`` headers.

Both say which backend answered, for which router, what it was predicted to score and cost, and what
it did cost; the routing object also lists every candidate and every attempt (with the judge's score
inside a cascade), and a cascade's ``cascade`` object (:func:`cascade_object`). Neither ever carries
prompt or answer text.
"""

from __future__ import annotations

import math
from typing import Any

from routeyard.gateway.backends.backend import Usage
from routeyard.gateway.request_trace import RequestTrace
from routeyard.gateway.router import Decision
from routeyard.gateway.walk import Walk


def routing_object(
    decision: Decision, backend: str, cost: float, usage: Usage, trace: RequestTrace, **extra: Any
) -> dict[str, Any]:
    """The ``routing`` object of a reply answered by ``backend`` at ``cost`` $ with ``usage``, listing
    ``trace``'s attempts so far; ``extra`` keys are added."""
    chosen = decision.candidate(backend)
    return {
        "request_id": trace.request_id,
        "router": decision.router if decision.routed else None,
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
                **({"score": a.score, "judge_reason": a.judge_reason} if a.score is not None else {}),
            }
            for a in trace.attempts
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
        **extra,
    }


def routing_headers(decision: Decision, backend: str, request_id: str, cost: float) -> dict[str, str]:
    """The ``x-routeyard-*`` headers of a reply answered by ``backend`` at ``cost`` $."""
    chosen = decision.candidate(backend)
    headers = {
        "x-routeyard-request-id": request_id,
        "x-routeyard-backend": backend,
        "x-routeyard-cost-usd": f"{cost:.8g}",
    }
    if decision.routed:
        headers["x-routeyard-router"] = decision.router
    if chosen is not None and chosen.predicted_quality is not None:
        headers["x-routeyard-predicted-quality"] = f"{chosen.predicted_quality:.4f}"
    return headers


def cascade_object(walk: Walk) -> dict[str, Any]:
    """A walk's ``routing.cascade``: its ``threshold``, the walk's budget (None when unlimited), whether
    the kept answer was accepted, and how many answers came after the first (failovers are not
    escalations)."""
    return {
        "threshold": walk.threshold,
        "budget_usd": walk.budget_usd if math.isfinite(walk.budget_usd) else None,
        "accepted": walk.accepted,
        "escalations": sum(s.reply is not None for s in walk.steps) - 1,
    }


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
