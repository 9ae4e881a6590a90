"""The routers a replay scores, each a function from one dataset's rows to its curves.

A builder gets :class:`RouterInputs` (the dataset's train and test rows of the table, and whatever the
replay was given: predictions, real judges' scores, a plan table and predictions over its plans) and the
:class:`ReplaySettings`, calibrates on the train rows only and returns curves of points on the test rows
(architecture.md §7). :data:`ROUTERS` names every router ``routeyard replay --routers`` knows;
:func:`router_curves` builds one. Scoring, pooling and the bootstrap are
:mod:`routeyard.evaluation.replay`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from routeyard.arrays import FloatArray, IndexArray
from routeyard.evaluation.cascade import BUDGETS, ERROR_RATES, cascade_curve, judged_cascade_curve
from routeyard.evaluation.plan_outcomes import PlanTable
from routeyard.evaluation.points import Curve, oracle_curve, random_curve, single_model_curve
from routeyard.evaluation.sweep import willingness_to_pay_curve
from routeyard.policy.cascade import cascade_order
from routeyard.policy.willingness_to_pay import log_spaced_grid
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED

DEFAULT_ROUTERS = ("oracle", "perfect", "zero", "random", "cascade")
ROUTERS = (*DEFAULT_ROUTERS, "predictions", "judged", "agreement", "plan-predictions", "deployed")


@dataclass(frozen=True)
class Predictions:
    """Predicted quality and $ cost for every row of the replayed table, (n, m) each."""

    quality: FloatArray
    cost: FloatArray
    name: str = "predictions"


@dataclass(frozen=True)
class JudgeScores:
    """A real judge's score in [0, 1] of every recorded answer of the replayed table, (n, m); NaN where
    there is no answer."""

    scores: FloatArray
    name: str = "judge"


class DeployedRouter(Protocol):
    """A router of a gateway config, replayed (``routeyard.evaluation.deployed_routers``): its curve over
    the replay's sweep and its operating point (its configured setting), on rows of the table."""

    @property
    def name(self) -> str:
        """The router's name in the config."""
        ...

    def curve(self, rows: IndexArray, settings: ReplaySettings) -> Curve:
        """The router's points on ``rows``, one per setting of the sweep."""
        ...

    def operating_point(self, rows: IndexArray) -> Curve:
        """The one point of the router's configured setting on ``rows``."""
        ...


@dataclass(frozen=True)
class ReplaySettings:
    """What to replay; defaults follow architecture.md §7."""

    routers: tuple[str, ...] = DEFAULT_ROUTERS
    datasets: tuple[str, ...] | None = None
    grid: FloatArray = field(default_factory=log_spaced_grid)
    budgets: tuple[float, ...] = BUDGETS
    error_rates: tuple[float, ...] = ERROR_RATES
    threshold: float = 0.5
    seed: int = DEFAULT_SEED
    bootstrap: int = 0
    """Resamples of the paired bootstrap of AIQ gains (0: none; the command's default is 1,000)."""


@dataclass(frozen=True)
class RouterInputs:
    """What routers see of one dataset: train and test rows of the table, every set of predictions."""

    table: OutcomeTable
    train: IndexArray
    test: IndexArray
    predictions: tuple[Predictions, ...]
    judge_scores: tuple[JudgeScores, ...] = ()
    plans: PlanTable | None = None
    plan_predictions: tuple[Predictions, ...] = ()
    deployed: tuple[DeployedRouter, ...] = ()

    def test_arrays(self) -> tuple[FloatArray, FloatArray]:
        return self.table.quality[self.test], self.table.cost[self.test]

    def plan_test_arrays(self) -> tuple[FloatArray, FloatArray]:
        assert self.plans is not None  # the replay checks it before any router runs
        return self.plans.table.quality[self.test], self.plans.table.cost[self.test]


RouterBuilder = Callable[[RouterInputs, ReplaySettings], list[Curve]]


def _oracle(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    return [oracle_curve(*data.test_arrays(), data.table.models, settings.grid)]


def _zero(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    return [single_model_curve(*data.test_arrays(), data.table.models)]


def _random(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    return [random_curve(*data.test_arrays())]


def _perfect(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """The willingness-to-pay router fed the recorded truth: an upper bound for any predictor."""
    quality, cost = data.test_arrays()
    return [willingness_to_pay_curve("wtp-perfect", quality, cost, quality, cost, settings.grid)]


def _predicted(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    return _wtp_curves("wtp", data.predictions, data.test_arrays(), data.test, settings)


def _cascade(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """One curve per judge error rate; models ordered by mean cost on the train rows."""
    calibration = data.train if len(data.train) else data.test
    order = cascade_order(data.table.cost[calibration].mean(axis=0))
    quality, cost = data.test_arrays()
    rng = np.random.default_rng(settings.seed)
    return [
        cascade_curve(
            quality,
            cost,
            order,
            budgets=settings.budgets,
            threshold=settings.threshold,
            error_rate=error_rate,
            rng=rng,
        )
        for error_rate in settings.error_rates
    ]


def _judged(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """One cascade curve per real judge, models in the same order as the simulated cascade's."""
    calibration = data.train if len(data.train) else data.test
    order = cascade_order(data.table.cost[calibration].mean(axis=0))
    quality, cost = data.test_arrays()
    return [
        judged_cascade_curve(
            j.name,
            quality,
            cost,
            j.scores[data.test],
            order,
            budgets=settings.budgets,
            threshold=settings.threshold,
        )
        for j in data.judge_scores
    ]


def _agreement(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """The Zero router over every plan: each single model and each agreement pair as a static router."""
    assert data.plans is not None
    return [single_model_curve(*data.plan_test_arrays(), data.plans.table.models, router="agreement")]


def _plan_predicted(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    return _wtp_curves("wtp-plan", data.plan_predictions, data.plan_test_arrays(), data.test, settings)


def _wtp_curves(
    prefix: str,
    predictions: tuple[Predictions, ...],
    outcomes: tuple[FloatArray, FloatArray],
    test: IndexArray,
    settings: ReplaySettings,
) -> list[Curve]:
    """``<prefix>-<name>``: willingness-to-pay routing on each set of ``predictions`` (rows ``test``),
    scored on the recorded test ``outcomes`` (quality, cost) of the same columns."""
    return [
        willingness_to_pay_curve(
            f"{prefix}-{p.name}", p.quality[test], p.cost[test], *outcomes, settings.grid
        )
        for p in predictions
    ]


def _deployed(data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """Each router of a gateway config as deployed, under its config name."""
    return [router.curve(data.test, settings) for router in data.deployed]


BUILDERS: dict[str, RouterBuilder] = {
    "oracle": _oracle,
    "zero": _zero,
    "random": _random,
    "perfect": _perfect,
    "predictions": _predicted,
    "cascade": _cascade,
    "judged": _judged,
    "agreement": _agreement,
    "plan-predictions": _plan_predicted,
    "deployed": _deployed,
}


def router_curves(router: str, data: RouterInputs, settings: ReplaySettings) -> list[Curve]:
    """The curves of ``router`` (a name in :data:`ROUTERS`) on one dataset."""
    return BUILDERS[router](data, settings)
