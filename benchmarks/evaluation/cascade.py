"""Replayed cascades: the gateway's cascade rule over recorded answers, with a simulated judge.

For each judge error rate ε, verdicts are drawn once (so all budgets of one ε see the same judge) and
the cascade is walked at every budget B; the curve of that ε has one point per budget.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from benchmarks.evaluation.points import Curve
from gateway.policy.cascade import walk_cascade
from judges.simulated import simulated_verdicts

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]

BUDGETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0)
ERROR_RATES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.4)


def cascade_curve(
    quality: FloatArray,
    cost: FloatArray,
    order: IndexArray,
    *,
    budgets: tuple[float, ...],
    threshold: float,
    error_rate: float,
    rng: np.random.Generator,
) -> Curve:
    """The cascade's points over ``budgets`` for one judge error rate.

    Args:
        quality, cost: (n, m) recorded quality and $ cost.
        order: model indices in cascade order (ascending cost).
        budgets: $ per prompt.
        threshold: the judge accepts an answer of quality ≥ threshold (before its errors).
        error_rate: the simulated judge's ε.
        rng: where the judge's flips come from.
    """
    step_quality, step_cost = quality[:, order], cost[:, order]
    accepted = simulated_verdicts(step_quality, threshold=threshold, error_rate=error_rate, rng=rng)
    rows = np.arange(len(quality))
    costs, qualities = [], []
    for budget in budgets:
        outcome = walk_cascade(accepted, step_cost, budget)
        costs.append(outcome.total_cost.mean())
        qualities.append(step_quality[rows, outcome.stopped_at].mean())
    labels = tuple(f"B={b:g}" for b in budgets)
    return Curve(f"cascade ε={error_rate:g}", np.array(costs), np.array(qualities), labels)
