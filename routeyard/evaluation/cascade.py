"""Replayed cascades: the gateway's cascade rule over recorded answers, with a simulated or a real judge.

For each simulated judge error rate ε, verdicts are drawn once (so all budgets of one ε see the same
judge) and the cascade is walked at every budget B; the curve of that ε has one point per budget. A real
judge's verdicts come from its scores of the recorded answers, walked the same way.
"""

from __future__ import annotations

import numpy as np

from routeyard.arrays import BoolArray, FloatArray, IndexArray
from routeyard.evaluation.points import Curve, curve_of_outcomes
from routeyard.judges.simulated import simulated_verdicts
from routeyard.policy.cascade import walk_cascade

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
    step_quality = quality[:, order]
    accepted = simulated_verdicts(step_quality, threshold=threshold, error_rate=error_rate, rng=rng)
    return walked_curve(f"cascade ε={error_rate:g}", step_quality, cost[:, order], accepted, budgets)


def judged_cascade_curve(
    name: str,
    quality: FloatArray,
    cost: FloatArray,
    scores: FloatArray,
    order: IndexArray,
    *,
    budgets: tuple[float, ...],
    threshold: float,
) -> Curve:
    """The cascade's points over ``budgets`` with a real judge's ``scores`` (n, m) of the recorded
    answers: accepted when score ≥ threshold (an answer without a score is rejected)."""
    accepted = np.nan_to_num(scores[:, order], nan=-np.inf) >= threshold
    return walked_curve(f"cascade {name}", quality[:, order], cost[:, order], accepted, budgets)


def walked_curve(
    router: str,
    step_quality: FloatArray,
    step_cost: FloatArray,
    accepted: BoolArray,
    budgets: tuple[float, ...],
) -> Curve:
    """One point per budget: mean total cost and mean kept quality of the cascades walked at that budget,
    with every prompt's total cost and kept quality (all arrays (n, k), steps in cascade order)."""
    rows = np.arange(len(step_quality))
    costs, qualities = [], []
    for budget in budgets:
        stops = walk_cascade(accepted, step_cost, budget)
        costs.append(stops.total_cost)
        qualities.append(step_quality[rows, stops.stopped_at])
    labels = [f"B={b:g}" for b in budgets]
    return curve_of_outcomes(router, np.stack(costs, axis=1), np.stack(qualities, axis=1), labels)
