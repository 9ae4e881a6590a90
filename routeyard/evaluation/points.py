"""Operating points of routers on a set of prompts, and the baselines that need no predictor.

A router's *point* on a set of prompts is (mean $ cost per prompt, mean quality); missing quality
counts as 0 (the table stores it as 0). A :class:`Curve` is a router's points over its settings; a curve
built from prompts also keeps every prompt's outcome under every setting (:class:`PromptOutcomes`), which
is what a bootstrap resamples.

Baselines (architecture.md §7): every single model; the Oracle; Random (uniform choice: the mean of the
single-model points); the Zero router (the hull of the single-model points — its curve is those points).

The Oracle: RouterBench's oracle is one point, per prompt the cheapest of the best answers (quality 0 at
cost 0 when every model scores 0). Alone, its hull is 0 below that point's cost, which on graded quality
(judge scores) is often well above the cheapest model's: the best answer is rarely a cheap one, and the
"upper bound" then reads below the Zero router. So the Oracle's curve here is the best routing with the
recorded truth at *every* budget: that point, plus the willingness-to-pay rule fed the true quality and
cost at every w of the grid (each a per-prompt choice that maximises q − c / w, so together they trace the
frontier of what any per-prompt choice can reach, from the cheapest answer of each prompt up), plus every
single model (also a routing the Oracle could choose). Its hull is at or above the Zero router's at every
cost and ends at RouterBench's point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import FloatArray, IndexArray
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay


@dataclass(frozen=True)
class PromptOutcomes:
    """Every prompt's $ cost and quality under every setting of a curve: ``cost`` and ``quality``
    (n, p), column k for setting k; a curve's point k is the column means."""

    cost: FloatArray
    quality: FloatArray

    def __post_init__(self) -> None:
        if self.cost.shape != self.quality.shape or self.cost.ndim != 2:
            raise ValueError(f"prompt outcomes need (n, p) cost and quality, got {self.cost.shape}")


@dataclass(frozen=True)
class Curve:
    """A router's points: ``cost`` and ``quality`` (p,), and a label naming each point's setting.

    ``outcomes``, when known, are the per-prompt outcomes the points are the means of (a pooled curve,
    a mean over datasets, has none). Raises ``ValueError`` for no points, lengths that differ, or
    outcomes with another number of settings.
    """

    router: str
    cost: FloatArray
    quality: FloatArray
    labels: tuple[str, ...]
    outcomes: PromptOutcomes | None = None

    def __post_init__(self) -> None:
        if not len(self.cost) == len(self.quality) == len(self.labels) > 0:
            raise ValueError(f"curve {self.router!r} needs ≥ 1 point with a cost, quality and label each")
        if self.outcomes is not None and self.outcomes.cost.shape[1] != len(self.labels):
            raise ValueError(f"curve {self.router!r}: outcomes of {self.outcomes.cost.shape[1]} settings")


def curve_of_outcomes(router: str, cost: FloatArray, quality: FloatArray, labels: Sequence[str]) -> Curve:
    """The curve whose point k is the mean over prompts of column k of ``cost`` and ``quality`` (n, p)."""
    outcomes = PromptOutcomes(np.asarray(cost, dtype=np.float64), np.asarray(quality, dtype=np.float64))
    return Curve(router, outcomes.cost.mean(axis=0), outcomes.quality.mean(axis=0), tuple(labels), outcomes)


def join_curves(router: str, curves: Sequence[Curve]) -> Curve:
    """One curve holding every point (and prompt outcome) of ``curves``, in order; all must have
    outcomes on the same prompts."""
    outcomes = [c.outcomes for c in curves]
    if any(o is None for o in outcomes):
        raise ValueError("only curves with prompt outcomes can be joined")
    cost = np.concatenate([o.cost for o in outcomes if o is not None], axis=1)
    quality = np.concatenate([o.quality for o in outcomes if o is not None], axis=1)
    return curve_of_outcomes(router, cost, quality, [label for c in curves for label in c.labels])


def outcomes_of_choice(
    quality: FloatArray, cost: FloatArray, choice: IndexArray
) -> tuple[FloatArray, FloatArray]:
    """(cost, quality) per prompt, (n,) each, when prompt i is sent to model ``choice[i]``; tables (n, m)."""
    rows = np.arange(len(choice))
    return cost[rows, choice], quality[rows, choice]


def point_of_choice(quality: FloatArray, cost: FloatArray, choice: IndexArray) -> tuple[float, float]:
    """(mean cost, mean quality) when prompt i is sent to model ``choice[i]``; tables are (n, m)."""
    paid, got = outcomes_of_choice(quality, cost, choice)
    return float(paid.mean()), float(got.mean())


def curve_of_choices(
    router: str, quality: FloatArray, cost: FloatArray, choices: Sequence[IndexArray], labels: Sequence[str]
) -> Curve:
    """One point per entry of ``choices`` ((n,) model indices each), scored on ``quality`` and ``cost``
    (n, m)."""
    columns = [outcomes_of_choice(quality, cost, choice) for choice in choices]
    return curve_of_outcomes(
        router, np.stack([c for c, _ in columns], axis=1), np.stack([q for _, q in columns], axis=1), labels
    )


def single_model_curve(
    quality: FloatArray, cost: FloatArray, models: tuple[str, ...], router: str = "zero"
) -> Curve:
    """Each model alone: its mean cost and mean quality, labelled by model name (the Zero router)."""
    return curve_of_outcomes(router, cost, quality, models)


def oracle_point(quality: FloatArray, cost: FloatArray) -> Curve:
    """RouterBench's Oracle, one point: per prompt the cheapest of the best answers (quality 0 at cost 0
    when every model scores 0); tables (n, m)."""
    best = quality.max(axis=1)
    cheapest_best = np.where(quality == best[:, None], cost, np.inf).min(axis=1)
    paid = np.where(best > 0.0, cheapest_best, 0.0)
    return curve_of_outcomes("oracle", paid[:, None], best[:, None], ("oracle",))


def oracle_curve(quality: FloatArray, cost: FloatArray, models: tuple[str, ...], grid: FloatArray) -> Curve:
    """The Oracle at every budget (module docstring): RouterBench's point, the willingness-to-pay rule on
    the recorded truth at every w of ``grid``, and every single model; tables (n, m)."""
    choices = [choose_by_willingness_to_pay(quality, cost, float(w)) for w in grid]
    sweep = curve_of_choices("oracle", quality, cost, choices, [f"w={w:g}" for w in grid])
    return join_curves(
        "oracle", [oracle_point(quality, cost), sweep, single_model_curve(quality, cost, models)]
    )


def random_curve(quality: FloatArray, cost: FloatArray) -> Curve:
    """Random's expected point: the mean of the single-model points (per prompt, the mean over models)."""
    return curve_of_outcomes(
        "random", cost.mean(axis=1)[:, None], quality.mean(axis=1)[:, None], ("uniform",)
    )
