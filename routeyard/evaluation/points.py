"""Operating points of routers on a set of prompts, and the baselines that need no predictor.

A router's *point* on a set of prompts is (mean $ cost per prompt, mean quality); missing quality
counts as 0 (the table stores it as 0). A :class:`Curve` is a router's points over its settings.
Baselines (architecture.md §7): every single model; the Oracle (per prompt, the cheapest of the best models;
quality 0 at cost 0 when every model scores 0); Random (uniform choice: the mean of the single-model
points); the Zero router (the hull of the single-model points — its curve is those points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routeyard.arrays import FloatArray, IndexArray


@dataclass(frozen=True)
class Curve:
    """A router's points: ``cost`` and ``quality`` (p,), and a label naming each point's setting."""

    router: str
    cost: FloatArray
    quality: FloatArray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.cost) == len(self.quality) == len(self.labels) > 0:
            raise ValueError(f"curve {self.router!r} needs ≥ 1 point with a cost, quality and label each")


def point_of_choice(quality: FloatArray, cost: FloatArray, choice: IndexArray) -> tuple[float, float]:
    """(mean cost, mean quality) when prompt i is sent to model ``choice[i]``; tables are (n, m)."""
    rows = np.arange(len(choice))
    return float(cost[rows, choice].mean()), float(quality[rows, choice].mean())


def single_model_curve(quality: FloatArray, cost: FloatArray, models: tuple[str, ...]) -> Curve:
    """Each model alone: its mean cost and mean quality, labelled by model name (the Zero router)."""
    return Curve("zero", cost.mean(axis=0), quality.mean(axis=0), models)


def oracle_curve(quality: FloatArray, cost: FloatArray) -> Curve:
    """The Oracle's single point."""
    best = quality.max(axis=1)
    cheapest_best = np.where(quality == best[:, None], cost, np.inf).min(axis=1)
    paid = np.where(best > 0.0, cheapest_best, 0.0)
    return Curve("oracle", np.array([paid.mean()]), np.array([best.mean()]), ("oracle",))


def random_curve(quality: FloatArray, cost: FloatArray) -> Curve:
    """Random's expected point: the mean of the single-model points."""
    return Curve("random", np.array([cost.mean()]), np.array([quality.mean()]), ("uniform",))
