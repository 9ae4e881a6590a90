"""Routers as a gateway deploys them, replayed: each is arrays over a table's rows and a decision rule.

``routeyard replay --config`` turns every router of a gateway config into one of these (the gateway's
router kinds know how: ``RouterConfig.replayed``); this module only scores them, with the decision
functions the gateway itself calls (``routeyard.policy``):

- :class:`WillingnessToPayRouter`: predictions over columns (models, or plans), the columns the router
  may choose (its artifact's models that are configured backends the table has), and its configured w.
  Its curve sweeps the replay's w grid; its *operating point* is its configured w.
- :class:`CascadeRouter`: predicted costs ordering the steps per prompt (or a configured order), a real
  judge's scores of the recorded answers (and what grading each cost), the threshold; the walk decides
  on the *predicted* cost of the next call, as the gateway does. Its curve sweeps the replay's budgets;
  its operating point is its configured budget.
- :class:`FixedRouter`: one column; curve and operating point are that column's mean.

Every method sees rows of the replayed table (a dataset's test split) and returns a :class:`Curve`
scored on the recorded quality and cost (plus a judge's cost). :func:`operating_points` gives each
router's operating point per dataset and pooled (an unweighted mean over datasets, as the replay pools).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import BoolArray, FloatArray, IndexArray
from routeyard.evaluation.points import Curve, curve_of_choices, curve_of_outcomes
from routeyard.evaluation.replayed_routers import DeployedRouter, ReplaySettings
from routeyard.policy.cascade import walk_cascade
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset


@dataclass(frozen=True)
class WillingnessToPayRouter:
    """Willingness-to-pay routing on predictions (n, m) over the columns of ``quality`` and ``cost``
    (n, m): the recorded outcomes of the table's models, or of plans. ``allowed`` (m,) says which columns
    the router may choose; ``willingness_to_pay`` is its configured w."""

    name: str
    predicted_quality: FloatArray
    predicted_cost: FloatArray
    quality: FloatArray
    cost: FloatArray
    allowed: BoolArray
    willingness_to_pay: float

    def curve(self, rows: IndexArray, settings: ReplaySettings) -> Curve:
        return self._curve(rows, [float(w) for w in settings.grid])

    def operating_point(self, rows: IndexArray) -> Curve:
        return self._curve(rows, [self.willingness_to_pay])

    def _curve(self, rows: IndexArray, grid: Sequence[float]) -> Curve:
        columns = np.flatnonzero(self.allowed)
        quality, cost = self.predicted_quality[rows][:, columns], self.predicted_cost[rows][:, columns]
        choices = [columns[choose_by_willingness_to_pay(quality, cost, w)] for w in grid]
        labels = [f"w={w:g}" for w in grid]
        return curve_of_choices(self.name, self.quality[rows], self.cost[rows], choices, labels)


@dataclass(frozen=True)
class CascadeRouter:
    """A cascade over the ``allowed`` (m,) columns: steps in ``order`` (column indices) when given, else
    per prompt by ascending ``predicted_cost`` (n, m); an answer is accepted when its ``scores`` (n, m,
    NaN: no verdict, rejected) ≥ ``threshold``; a step costs its recorded cost plus ``judge_cost`` (n, m);
    the next step is called when the last was rejected and spent + its predicted cost ≤ the budget."""

    name: str
    predicted_cost: FloatArray
    quality: FloatArray
    cost: FloatArray
    scores: FloatArray
    judge_cost: FloatArray
    allowed: BoolArray
    order: tuple[int, ...]
    threshold: float
    budget_usd: float

    def curve(self, rows: IndexArray, settings: ReplaySettings) -> Curve:
        return self._curve(rows, settings.budgets)

    def operating_point(self, rows: IndexArray) -> Curve:
        return self._curve(rows, (self.budget_usd,))

    def _curve(self, rows: IndexArray, budgets: Sequence[float]) -> Curve:
        steps = self.steps(rows)
        prompts = np.arange(len(rows))
        at = prompts[:, None]
        accepted = np.nan_to_num(self.scores[rows][at, steps], nan=-np.inf) >= self.threshold
        step_cost = self.cost[rows][at, steps] + self.judge_cost[rows][at, steps]
        step_quality = self.quality[rows][at, steps]
        planned = self.predicted_cost[rows][at, steps]
        costs, qualities = [], []
        for budget in budgets:
            stops = walk_cascade(accepted, step_cost, budget, planned_cost=planned)
            costs.append(stops.total_cost)
            qualities.append(step_quality[prompts, stops.stopped_at])
        labels = [f"B={b:g}" for b in budgets]
        return curve_of_outcomes(self.name, np.stack(costs, axis=1), np.stack(qualities, axis=1), labels)

    def steps(self, rows: IndexArray) -> IndexArray:
        """(len(rows), k) the columns each prompt's cascade tries, in order."""
        if self.order:
            return np.tile(np.array(self.order, dtype=np.intp), (len(rows), 1))
        columns = np.flatnonzero(self.allowed)
        ranked = np.argsort(self.predicted_cost[rows][:, columns], axis=1, kind="stable")
        return np.asarray(columns[ranked], dtype=np.intp)


@dataclass(frozen=True)
class FixedRouter:
    """Always column ``column`` of ``quality`` and ``cost`` (n, m)."""

    name: str
    column: int
    quality: FloatArray
    cost: FloatArray
    label: str

    def curve(self, rows: IndexArray, settings: ReplaySettings) -> Curve:
        return self.operating_point(rows)

    def operating_point(self, rows: IndexArray) -> Curve:
        choice = np.full(len(rows), self.column, dtype=np.intp)
        return curve_of_choices(self.name, self.quality[rows], self.cost[rows], [choice], [self.label])


@dataclass(frozen=True)
class OperatingPoint:
    """Where a deployed router sits on one dataset (or pooled): its configured setting's mean $ cost and
    quality per test prompt."""

    router: str
    dataset: str
    label: str
    cost: float
    quality: float


def operating_points(
    table: OutcomeTable, routers: Sequence[DeployedRouter], settings: ReplaySettings
) -> list[OperatingPoint]:
    """Every router's operating point on each selected dataset's test split, then pooled (the unweighted
    mean over datasets, dataset ``"pooled"``), in that order."""
    splits = split_by_dataset(table, seed=settings.seed)
    names = settings.datasets or tuple(splits)
    points = []
    for router in routers:
        per_dataset = [(name, router.operating_point(splits[name].test)) for name in names]
        points += [_point(router.name, name, curve) for name, curve in per_dataset]
        costs = [float(curve.cost[0]) for _, curve in per_dataset]
        qualities = [float(curve.quality[0]) for _, curve in per_dataset]
        label = per_dataset[0][1].labels[0]
        points.append(OperatingPoint(router.name, "pooled", label, _mean(costs), _mean(qualities)))
    return points


def _point(router: str, dataset: str, curve: Curve) -> OperatingPoint:
    return OperatingPoint(router, dataset, curve.labels[0], float(curve.cost[0]), float(curve.quality[0]))


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


@dataclass(frozen=True)
class DeployedConfig:
    """What a replay of a gateway config reports beside the curves: the config file (``path``, its
    ``sha256``), every replayed router's ``operating_points``, the routers ``skipped`` (name → why), the
    config's backends the table lacks (``missing_backends``) and the table's models that are no backend
    of it (``unused_models``, left out of the replay)."""

    path: str
    sha256: str
    operating_points: tuple[OperatingPoint, ...]
    skipped: dict[str, str]
    missing_backends: tuple[str, ...]
    unused_models: tuple[str, ...]
