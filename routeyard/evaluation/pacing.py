"""Budget pacing replayed: a stream of prompts routed with the w a pacing controller sets.

:func:`simulate_pacing` streams the given rows of an outcome table in a seeded random order, one prompt
at a time, on a virtual clock of one prompt per second (so the target is a $ per prompt and the tuning's
``response_seconds`` a number of prompts). Each prompt goes to the model
:func:`~routeyard.policy.willingness_to_pay.choose_by_willingness_to_pay` picks from its *predicted*
quality and cost at the controller's current w; the *recorded* cost of that model's answer is what the
controller is told was spent, and its recorded quality what the prompt scores.

The comparison is the best fixed w in hindsight (:func:`best_fixed_w`): over the same rows and the same
predictions, the w of highest mean quality among those whose mean spend is at most the paced run's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import FloatArray, IndexArray
from routeyard.evaluation.points import point_of_choice
from routeyard.evaluation.replayed_routers import Predictions
from routeyard.policy.pacing import PacingController, PacingTuning
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay, log_spaced_grid

_BISECTION_STEPS = 40


@dataclass(frozen=True)
class FixedPoint:
    """A fixed w and its (mean $ cost per prompt, mean quality) on the rows."""

    willingness_to_pay: float
    cost: float
    quality: float


@dataclass(frozen=True)
class PacingRun:
    """One paced stream. Per streamed prompt k (in stream order): ``rows[k]`` (table row),
    ``willingness_to_pay[k]`` (the w it was routed with), ``cumulative_spend[k]`` ($ spent on prompts
    0..k); ``mean_quality`` over the stream; ``hindsight``: the best fixed w spending at most as much."""

    target_usd_per_prompt: float
    rows: IndexArray
    willingness_to_pay: FloatArray
    cumulative_spend: FloatArray
    mean_quality: float
    hindsight: FixedPoint

    @property
    def spend_ratio(self) -> FloatArray:
        """(n,) spend so far over the target so far, after each prompt."""
        return self.cumulative_spend / (self.target_usd_per_prompt * np.arange(1, len(self.rows) + 1))

    @property
    def final_spend_ratio(self) -> float:
        return float(self.spend_ratio[-1])

    @property
    def mean_cost(self) -> float:
        return float(self.cumulative_spend[-1] / len(self.rows))

    @property
    def quality_ratio(self) -> float:
        """Mean quality over the best fixed w's (inf when that is 0 and this is not; 1 when both are)."""
        if self.hindsight.quality == 0.0:
            return 1.0 if self.mean_quality == 0.0 else math.inf
        return self.mean_quality / self.hindsight.quality


def simulate_pacing(
    quality: FloatArray,
    cost: FloatArray,
    predictions: Predictions,
    rows: IndexArray,
    *,
    target_usd_per_prompt: float,
    seed: int,
    tuning: PacingTuning | None = None,
) -> PacingRun:
    """Stream ``rows`` (indices into the (N, m) recorded ``quality`` and ``cost`` and the predictions' rows)
    in the order of ``numpy.random.default_rng(seed).permutation``, paced to ``target_usd_per_prompt``
    (module docstring). Raises ``ValueError`` for no rows or a target that is not a positive $."""
    if len(rows) == 0:
        raise ValueError("no rows to stream")
    controller = PacingController(target_usd_per_prompt, tuning or PacingTuning())
    order = np.asarray(rows, dtype=np.intp)[np.random.default_rng(seed).permutation(len(rows))]
    state = controller.initial_state()
    used, spent, got = np.empty(len(order)), np.empty(len(order)), np.empty(len(order))
    for k, row in enumerate(order):
        used[k] = state.willingness_to_pay
        choice = choose_by_willingness_to_pay(
            predictions.quality[row : row + 1], predictions.cost[row : row + 1], used[k]
        )[0]
        spent[k], got[k] = cost[row, choice], quality[row, choice]
        state = controller.update(state, spent_usd=float(spent[k]), elapsed_seconds=1.0)
    arrays = (predictions.quality[order], predictions.cost[order], quality[order], cost[order])
    cumulative = np.cumsum(spent)
    hindsight = best_fixed_w(*arrays, budget_usd_per_prompt=float(cumulative[-1] / len(order)))
    return PacingRun(target_usd_per_prompt, order, used, cumulative, float(got.mean()), hindsight)


def best_fixed_w(
    predicted_quality: FloatArray,
    predicted_cost: FloatArray,
    quality: FloatArray,
    cost: FloatArray,
    *,
    budget_usd_per_prompt: float,
    grid: FloatArray | None = None,
) -> FixedPoint:
    """The fixed w of highest mean recorded quality among those whose mean recorded cost is ≤ the budget,
    all tables (n, m) over the same prompts.

    Candidates: every w of ``grid`` (default :func:`log_spaced_grid`) and, between the two neighbouring
    finite grid values where the spend crosses the budget, the largest w under it found by bisection on
    log w. When even the cheapest candidate overspends, it is returned (its cost then exceeds the budget).
    """
    values = log_spaced_grid() if grid is None else np.asarray(grid, dtype=np.float64)

    def point(w: float) -> FixedPoint:
        choice = choose_by_willingness_to_pay(predicted_quality, predicted_cost, w)
        return FixedPoint(w, *point_of_choice(quality, cost, choice))

    points = [point(float(w)) for w in values]
    points += _bisected(points, budget_usd_per_prompt, point)
    within = [p for p in points if p.cost <= budget_usd_per_prompt]
    if not within:
        return min(points, key=lambda p: (p.cost, -p.quality))
    return max(within, key=lambda p: (p.quality, -p.cost))


def _bisected(
    points: list[FixedPoint], budget: float, point: Callable[[float], FixedPoint]
) -> list[FixedPoint]:
    """Points of the bisection between the first neighbouring pair of finite positive w bracketing the
    budget."""
    for low, high in itertools.pairwise(points):
        finite = low.willingness_to_pay > 0.0 and math.isfinite(high.willingness_to_pay)
        if finite and low.cost <= budget < high.cost:
            found = []
            lo, hi = math.log(low.willingness_to_pay), math.log(high.willingness_to_pay)
            for _ in range(_BISECTION_STEPS):
                middle = point(math.exp((lo + hi) / 2))
                found.append(middle)
                if middle.cost <= budget:
                    lo = math.log(middle.willingness_to_pay)
                else:
                    hi = math.log(middle.willingness_to_pay)
            return found
    return []


def model_spend_per_prompt(cost: FloatArray, rows: IndexArray, model: int) -> float:
    """Mean recorded $ per prompt of always calling column ``model`` on ``rows`` (a target's reference)."""
    return float(np.asarray(cost)[rows, model].mean())
