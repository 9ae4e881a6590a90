"""How every reply explains itself: the ``routing`` body object and the ``x-routeyard-*`` headers.

Both say which backend answered, for which router, what it was predicted to score and cost, and what
it did cost; the routing object also lists every candidate and every attempt (with the judge's score
inside a walk), and a walk's own object (:func:`walk_object`): a cascade's ``cascade``, a plan router's
``plan`` (its candidates are plans, and the predictions shown are the chosen plan's; the headers name
it in ``x-routeyard-plan``). Neither ever carries prompt or answer text.

**Overhead** (:data:`OVERHEAD_HEADER`, ``x-routeyard-overhead-ms``, on every reply and on every error
raised once the request's trace exists; the histogram ``routeyard_overhead_seconds{router}``) is the
gateway's own time: routing, judging and relaying, without upstream waiting. For a request it is the
wall time from the request's start (``RequestTrace.started``: its arrival in the route, before
authentication and parsing) to the reply being rendered (or the error raised), less the time spent
waiting on upstream calls (``RequestTrace.upstream``: from handing a backend its body to its whole reply,
or a stream's first chunk, or the call's failure; concurrent calls count once). Every call counts,
those that failed or were fallen back from too. A judge's grading is the gateway's own time when the
judge is local (``heuristics``, ``learned``, an ``agreement`` verdict on answers it already has); when it
called an upstream (an ``llm`` grader, an ``agreement`` judge's second answer: its judgement names a
``grader``), its time is upstream waiting. A grading whose upstream call failed names no grader and counts
as the gateway's own (it is bounded by the grader backend's timeout). Waiting for the event loop under
load is the gateway's own time; writing the reply to a slow client is not counted (it happens after).

A stream's header is sent before its body, so its header is the overhead up to the first byte: routing
and opening the stream, less the upstream's time to its first chunk. Its histogram observation, made
when the stream ends, adds the relay's own time after that: taking each chunk, settling and explaining
the last, writing the log record; not the waits for the upstream's next chunk nor for the client to take
a chunk. The cost of measuring is a few ``time.perf_counter`` calls per request and two per chunk.
"""

from __future__ import annotations

import math
from typing import Any

from routeyard.gateway.backends.backend import Usage
from routeyard.gateway.request_trace import RequestTrace
from routeyard.gateway.router import Decision
from routeyard.gateway.walk import PlanWalk, Step, Walk


def routing_object(
    decision: Decision,
    backend: str,
    cost: float,
    usage: Usage,
    trace: RequestTrace,
    *,
    route: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``routing`` object of a reply answered by ``backend`` at ``cost`` $ with ``usage``, listing
    ``trace``'s attempts so far; its predictions are those of the candidate ``route`` (default
    ``backend``; a plan's name for a plan router); where its w came from
    (``willingness_to_pay_source``: ``request``, ``pacing`` or ``config``) when the router used one;
    the backends the request could not use and why (``excluded``, ``routeyard.gateway.capabilities``)
    when there were any; ``extra`` keys are added."""
    chosen = decision.candidate(route or backend)
    return {
        "request_id": trace.request_id,
        "router": decision.router if decision.routed else None,
        "backend": backend,
        "willingness_to_pay": _finite_or_none(decision.willingness_to_pay),
        **(
            {"willingness_to_pay_source": decision.willingness_to_pay_source}
            if decision.willingness_to_pay_source is not None
            else {}
        ),
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
        **({"excluded": dict(trace.excluded)} if trace.excluded else {}),
        **({"cache": trace.cache} if trace.cache is not None else {}),
        **({"affinity": trace.affinity} if trace.affinity is not None else {}),
        **extra,
    }


OVERHEAD_HEADER = "x-routeyard-overhead-ms"


def overhead_ms(seconds: float) -> str:
    """The value of :data:`OVERHEAD_HEADER` for an overhead of ``seconds``: milliseconds, 3 decimals."""
    return f"{seconds * 1000.0:.3f}"


def routing_headers(
    decision: Decision, backend: str, request_id: str, cost: float, *, plan: str | None = None
) -> dict[str, str]:
    """The ``x-routeyard-*`` headers of a reply answered by ``backend`` at ``cost`` $, following ``plan``
    (a plan router's plan name, whose predictions are shown) when given."""
    chosen = decision.candidate(plan or backend)
    headers = {
        "x-routeyard-request-id": request_id,
        "x-routeyard-backend": backend,
        "x-routeyard-cost-usd": f"{cost:.8g}",
    }
    if decision.routed:
        headers["x-routeyard-router"] = decision.router
    if plan is not None:
        headers["x-routeyard-plan"] = plan
    if chosen is not None and chosen.predicted_quality is not None:
        headers["x-routeyard-predicted-quality"] = f"{chosen.predicted_quality:.4f}"
    return headers


def walk_object(walk: Walk) -> dict[str, Any]:
    """The ``routing`` keys that explain ``walk``: ``{"plan": …}`` for a plan router's walk
    (:func:`plan_object`), else ``{"cascade": …}`` (:func:`cascade_object`)."""
    if isinstance(walk, PlanWalk):
        return {"plan": plan_object(walk)}
    return {"cascade": cascade_object(walk)}


def plan_object(walk: PlanWalk) -> dict[str, Any]:
    """A plan walk's ``routing.plan``: the plan's ``name``, the ``verdict`` on its pair (None for a
    single plan or a failed pair call), the role of the step whose answer is ``kept``, the plans tried
    before that got no answer (``failed_plans``) and every step: its role, backend, status (``ok`` or
    the error's code), $ (the call's and its judging's), seconds, and its judge's score and reason."""
    kept = walk.kept
    return {
        "name": walk.plan,
        "verdict": walk.verdict,
        "kept": kept.role if kept is not None else None,
        "failed_plans": list(walk.failed_plans),
        "steps": [_step_object(step) for step in walk.steps],
    }


def _step_object(step: Step) -> dict[str, Any]:
    judged = step.judgement
    return {
        "role": step.role,
        "backend": step.backend,
        "status": "ok" if step.error is None else step.error.code or "upstream_error",
        "cost_usd": step.cost_usd,
        "seconds": round(step.seconds, 4),
        **({"score": judged.score, "judge_reason": judged.reason} if judged is not None else {}),
    }


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
