"""The cascade rule (RouterBench §cascading): escalate while the judge rejects and the budget allows.

Models are tried in ascending cost. The first is always called; after each answer, the cascade calls the
next model only if the judge rejected the answer *and* the next call's cost fits in what remains of the
per-prompt budget. The answer kept is the last one called; the cost is the sum of every call.

:func:`should_escalate` is the rule, one step at a time, as the live gateway applies it with predicted
costs. :func:`walk_cascade` applies the same rule to whole recorded cascades at once for replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routeyard.arrays import BoolArray, FloatArray, IndexArray


def cascade_order(mean_cost: FloatArray) -> IndexArray:
    """Model indices in ascending mean cost (stable: equal costs keep column order)."""
    return np.asarray(np.argsort(mean_cost, kind="stable"), dtype=np.intp)


def should_escalate(
    accepted: bool | BoolArray,
    spent: float | FloatArray,
    next_cost: float | FloatArray,
    budget: float,
) -> bool | BoolArray:
    """Whether to call the next model: the last answer was rejected and ``spent + next_cost ≤ budget``.

    Works elementwise on scalars or arrays; costs and budget in $.
    """
    verdict = np.logical_and(np.logical_not(accepted), np.asarray(spent) + next_cost <= budget)
    return bool(verdict) if np.ndim(verdict) == 0 else verdict


@dataclass(frozen=True)
class CascadeStops:
    """Where each prompt's cascade stopped and what it spent.

    ``stopped_at`` (n,) is the step (0-based position in the cascade) whose answer is kept;
    ``total_cost`` (n,) is the $ sum of every step called.
    """

    stopped_at: IndexArray
    total_cost: FloatArray


def walk_cascade(
    accepted: BoolArray, step_cost: FloatArray, budget: float, planned_cost: FloatArray | None = None
) -> CascadeStops:
    """Run :func:`should_escalate` over recorded cascades, for all prompts at once.

    Args:
        accepted: (n, k) judge verdict on each step's answer, steps in cascade order.
        step_cost: (n, k) $ cost of each step, ≥ 0, in cascade order.
        budget: $ per prompt.
        planned_cost: (n, k) the cost each step is *expected* to have when deciding whether to call it,
            as the gateway decides with predicted costs; default ``step_cost`` (the recorded truth).

    A step j ≥ 1 is called when step j − 1 was rejected and what was spent so far plus
    ``planned_cost[:, j]`` fits the budget; the stop is the earlier of the first accepted step and the
    step before the first one that does not fit (never before step 0). With ``planned_cost = step_cost``
    and non-negative costs that is "the last step whose running total fits". Equal to applying
    :func:`should_escalate` step by step (tested), in O(n k) without a Python loop over steps.
    """
    if accepted.shape != step_cost.shape or accepted.ndim != 2 or accepted.shape[1] == 0:
        raise ValueError(f"accepted {accepted.shape} and step_cost {step_cost.shape} must be (n, k), k ≥ 1")
    planned = step_cost if planned_cost is None else planned_cost
    if planned.shape != step_cost.shape:
        raise ValueError(f"planned_cost {planned.shape} must be like step_cost {step_cost.shape}")
    n, k = accepted.shape
    running = np.cumsum(step_cost, axis=1)
    first_accept = np.where(accepted.any(axis=1), accepted.argmax(axis=1), k - 1)
    unaffordable = running[:, :-1] + planned[:, 1:] > budget  # (n, k - 1): step j + 1 does not fit
    unaffordable = np.concatenate([unaffordable, np.ones((n, 1), dtype=bool)], axis=1)  # stop at k − 1
    last_affordable = unaffordable.argmax(axis=1)
    stopped_at = np.minimum(first_accept, last_affordable).astype(np.intp)
    return CascadeStops(stopped_at=stopped_at, total_cost=running[np.arange(n), stopped_at])
