"""Replay an outcome table through routers and score them: the offline harness's core.

Per dataset (architecture.md §7): split by sample_id (seed 42, 70/30); every router is built or calibrated on
the train rows only and scored on the test rows; each router's curve gets its hull, its AIQ over the
dataset's fixed cost range [cheapest, dearest single model's mean test cost] and RouterBench's AIQ, and,
with ``settings.bootstrap`` resamples, a paired bootstrap interval of its AIQ gain over the Zero router
(:mod:`routeyard.evaluation.bootstrap`). Pooled results average the per-dataset curves point by point
(settings align across datasets) and the per-dataset AIQs, unweighted. The routers themselves, what
they are given and how each one's curves are built, are :mod:`routeyard.evaluation.replayed_routers`.

Plans (:mod:`routeyard.evaluation.plan_outcomes`): given a :class:`PlanTable` over the same rows, the
``agreement`` router is the Zero router over every plan column (the hull of every plan's point: static
agreement cascades beside the single models), and predictions over the plan columns give willingness-to-
pay curves ``wtp-plan-<name>`` scored on the plans' outcomes. The cost range, ``zero``, ``oracle``,
``random``, ``perfect`` and the cascades stay over the base models, so every router shares one range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tqdm import tqdm

from routeyard.arrays import FloatArray
from routeyard.evaluation.aiq import aiq, routerbench_aiq
from routeyard.evaluation.bootstrap import (
    GainInterval,
    dataset_rng,
    gain_interval,
    gain_replicates,
    resample_weights,
)
from routeyard.evaluation.deployed_routers import DeployedConfig
from routeyard.evaluation.hull import Hull, nondecreasing_hull
from routeyard.evaluation.plan_outcomes import PlanTable
from routeyard.evaluation.points import Curve, single_model_curve
from routeyard.evaluation.replayed_routers import (
    ROUTERS,
    DeployedRouter,
    JudgeScores,
    Predictions,
    ReplaySettings,
    RouterInputs,
    router_curves,
)
from routeyard.evaluation.report.pacing import PacingReport
from routeyard.judges.judge_metrics import JudgeErrorRates, judge_error_rates
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset


@dataclass(frozen=True)
class JudgeResult:
    """A judge's measured errors on a dataset's test answers (at the replay's threshold)."""

    name: str
    rates: JudgeErrorRates


@dataclass(frozen=True)
class RouterResult:
    """A router's curve, hull and AIQs; ``gain`` is its AIQ minus the Zero router's with its bootstrap
    interval (``None`` without a bootstrap)."""

    curve: Curve
    hull: Hull
    aiq: float
    aiq_routerbench: float
    gain: GainInterval | None = None


@dataclass(frozen=True)
class DatasetResult:
    """One dataset's (or the pool's) scores; ``cost_range`` is the AIQ range in $ per prompt, ``zero_aiq``
    the Zero router's AIQ (the hull of ``single_models``) that gains are measured from."""

    dataset: str
    n_train: int
    n_test: int
    missing_quality: int
    cost_range: tuple[float, float]
    routerbench_max_cost: float
    single_models: Curve
    routers: tuple[RouterResult, ...]
    zero_aiq: float
    judges: tuple[JudgeResult, ...] = ()


@dataclass(frozen=True)
class ReplayReport:
    """The scores, and, for each router trained on the fly (by curve name, ``wtp-knn``), how its
    hyperparameters were chosen: ``{"summary": one line, "record": the manifest's selection record}``,
    the Zero guard included (filled by the caller that trained them); ``deployment`` is the gateway
    config replayed, if one was, and ``pacing`` the paced streams, if asked for (filled by callers too)."""

    source: str
    settings: ReplaySettings
    datasets: tuple[DatasetResult, ...]
    pooled: DatasetResult
    repairs: tuple[str, ...]
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployment: DeployedConfig | None = None
    pacing: PacingReport | None = None


def replay(
    table: OutcomeTable,
    settings: ReplaySettings,
    *,
    predictions: Predictions | tuple[Predictions, ...] = (),
    judge_scores: tuple[JudgeScores, ...] = (),
    plans: PlanTable | None = None,
    plan_predictions: tuple[Predictions, ...] = (),
    deployed: tuple[DeployedRouter, ...] = (),
    progress: bool = False,
) -> ReplayReport:
    """Score ``settings.routers`` on every selected dataset of ``table`` and pool the results.

    The ``predictions`` router gives one willingness-to-pay curve, ``wtp-<name>``, per set of
    ``predictions``; the ``judged`` router one cascade curve, ``cascade <name>``, per set of
    ``judge_scores``, whose error rates on the test answers each dataset reports. The ``agreement`` router
    needs ``plans`` (a plan table over ``table``'s rows and models); the ``plan-predictions`` router
    gives one curve ``wtp-plan-<name>`` per set of ``plan_predictions`` ((n, plans) each, columns in the
    plan table's order). The ``deployed`` router gives one curve per router of ``deployed``, named as
    configured. Raises ``ValueError`` for an unknown router or dataset, a router without its
    inputs, predictions, scores or plans that do not fit the table, repeated prediction names, or a
    dataset with no test rows.
    """
    predictions = (predictions,) if isinstance(predictions, Predictions) else tuple(predictions)
    _check(table, settings, predictions, judge_scores)
    _check_plans(table, settings, plans, plan_predictions)
    if "deployed" in settings.routers and not deployed:
        raise ValueError("the 'deployed' router needs the routers of a gateway config")
    splits = split_by_dataset(table, seed=settings.seed)
    names = settings.datasets or tuple(splits)
    results, replicates = [], []
    for name in _progress(names, progress):
        split = splits[name]
        if len(split.test) == 0:
            raise ValueError(f"dataset {name!r} has no test prompts")
        data = RouterInputs(
            table, split.train, split.test, predictions, judge_scores, plans, plan_predictions, deployed
        )
        result, gains = _score_dataset(data, name, settings)
        results.append(result)
        replicates.append(gains)
    pooled = _pool(results, replicates)
    return ReplayReport(table.source, settings, tuple(results), pooled, table.repairs)


def _score_dataset(
    data: RouterInputs, name: str, settings: ReplaySettings
) -> tuple[DatasetResult, FloatArray]:
    """The dataset's result and its gain replicates (B, routers), B = ``settings.bootstrap`` (may be 0)."""
    quality, cost = data.test_arrays()
    models = single_model_curve(quality, cost, data.table.models)
    cost_range = (float(models.cost.min()), float(models.cost.max()))
    curves = [curve for router in settings.routers for curve in router_curves(router, data, settings)]
    max_cost = max(float(curve.cost.max()) for curve in [models, *curves])
    zero_aiq = aiq(nondecreasing_hull(models.cost, models.quality), *cost_range)
    routers = [_score_curve(curve, cost_range, max_cost) for curve in curves]
    replicates = np.empty((0, len(curves)))
    if settings.bootstrap > 0:
        weights = resample_weights(len(data.test), settings.bootstrap, dataset_rng(settings.seed, name))
        replicates = gain_replicates(curves, models, weights)
        routers = _with_gains(routers, zero_aiq, replicates)
    result = DatasetResult(
        dataset=name,
        n_train=len(data.train),
        n_test=len(data.test),
        missing_quality=int(data.table.missing[data.test].sum()),
        cost_range=cost_range,
        routerbench_max_cost=max_cost,
        single_models=models,
        routers=tuple(routers),
        zero_aiq=zero_aiq,
        judges=tuple(_judge_result(data, j, settings.threshold) for j in data.judge_scores),
    )
    return result, replicates


def _with_gains(routers: list[RouterResult], zero_aiq: float, replicates: FloatArray) -> list[RouterResult]:
    """Each router with its gain over ``zero_aiq`` and the interval of its column of ``replicates``."""
    return [replace(r, gain=gain_interval(r.aiq - zero_aiq, replicates[:, i])) for i, r in enumerate(routers)]


def _judge_result(data: RouterInputs, judge: JudgeScores, threshold: float) -> JudgeResult:
    """The judge's errors on the test answers that have a score and a known quality."""
    scores = judge.scores[data.test]
    usable = ~np.isnan(scores) & ~data.table.missing[data.test]
    good = data.table.quality[data.test][usable] >= threshold
    return JudgeResult(judge.name, judge_error_rates(scores[usable], good, threshold))


def _score_curve(curve: Curve, cost_range: tuple[float, float], max_cost: float) -> RouterResult:
    hull = nondecreasing_hull(curve.cost, curve.quality)
    return RouterResult(curve, hull, aiq(hull, *cost_range), routerbench_aiq(hull, max_cost))


def _pool(results: list[DatasetResult], replicates: list[FloatArray]) -> DatasetResult:
    """Unweighted mean over datasets: curves point by point, AIQs and ranges as numbers, gain replicates
    replicate by replicate (each dataset drew its prompts independently)."""
    pooled_routers = []
    for position in range(len(results[0].routers)):
        per_dataset = [r.routers[position] for r in results]
        curve = _mean_curve([r.curve for r in per_dataset])
        hull = nondecreasing_hull(curve.cost, curve.quality)
        pooled_routers.append(
            RouterResult(
                curve,
                hull,
                float(np.mean([r.aiq for r in per_dataset])),
                float(np.mean([r.aiq_routerbench for r in per_dataset])),
            )
        )
    models = _mean_curve([r.single_models for r in results])
    zero_aiq = float(np.mean([r.zero_aiq for r in results]))
    if len(replicates[0]):
        pooled_routers = _with_gains(pooled_routers, zero_aiq, np.mean(replicates, axis=0))
    judges = tuple(
        JudgeResult(first.name, _mean_rates([r.judges[i].rates for r in results]))
        for i, first in enumerate(results[0].judges)
    )
    return DatasetResult(
        dataset="pooled",
        n_train=sum(r.n_train for r in results),
        n_test=sum(r.n_test for r in results),
        missing_quality=sum(r.missing_quality for r in results),
        cost_range=(float(models.cost.min()), float(models.cost.max())),
        routerbench_max_cost=max(r.routerbench_max_cost for r in results),
        single_models=models,
        routers=tuple(pooled_routers),
        zero_aiq=zero_aiq,
        judges=judges,
    )


def _mean_rates(rates: list[JudgeErrorRates]) -> JudgeErrorRates:
    """Unweighted mean over datasets of each rate; counts summed."""

    def mean(field_name: str) -> float:
        return float(np.mean([getattr(r, field_name) for r in rates]))

    return JudgeErrorRates(
        threshold=rates[0].threshold,
        n=sum(r.n for r in rates),
        good=sum(r.good for r in rates),
        false_accept_rate=mean("false_accept_rate"),
        false_reject_rate=mean("false_reject_rate"),
        error_rate=mean("error_rate"),
        roc_auc=mean("roc_auc"),
    )


def _mean_curve(curves: list[Curve]) -> Curve:
    first = curves[0]
    cost = np.mean([c.cost for c in curves], axis=0)
    quality = np.mean([c.quality for c in curves], axis=0)
    return Curve(first.router, cost, quality, first.labels)


def _check(
    table: OutcomeTable,
    settings: ReplaySettings,
    predictions: tuple[Predictions, ...],
    judge_scores: tuple[JudgeScores, ...],
) -> None:
    unknown = set(settings.routers) - set(ROUTERS)
    if unknown:
        raise ValueError(f"unknown routers {sorted(unknown)}; known: {', '.join(ROUTERS)}")
    if not settings.routers:
        raise ValueError("no routers to replay")
    if settings.datasets is not None:
        absent = set(settings.datasets) - set(table.dataset_names)
        if absent:
            raise ValueError(f"datasets {sorted(absent)} not in the table; it has {table.dataset_names}")
    if "predictions" in settings.routers and not predictions:
        raise ValueError("the 'predictions' router needs predictions")
    if "judged" in settings.routers and not judge_scores:
        raise ValueError("the 'judged' router needs a judge's scores")
    for j in judge_scores:
        if j.scores.shape != table.quality.shape:
            raise ValueError(f"judge scores {j.name!r} are {j.scores.shape}, table is {table.quality.shape}")
    _check_predictions("predictions", predictions, table.quality.shape)
    if table.n_prompts == 0:
        raise ValueError(f"{table.source}: the table has no prompts")
    if settings.bootstrap < 0:
        raise ValueError(f"bootstrap resamples must be ≥ 0, got {settings.bootstrap}")


def _check_plans(
    table: OutcomeTable,
    settings: ReplaySettings,
    plans: PlanTable | None,
    plan_predictions: tuple[Predictions, ...],
) -> None:
    if plans is None:
        if {"agreement", "plan-predictions"} & set(settings.routers):
            raise ValueError("the 'agreement' and 'plan-predictions' routers need a plan table")
        return
    if plans.base_models != table.models or not np.array_equal(plans.table.sample_ids, table.sample_ids):
        raise ValueError("the plan table was not built from the replayed table (other rows or models)")
    if "plan-predictions" in settings.routers and not plan_predictions:
        raise ValueError("the 'plan-predictions' router needs predictions over the plans")
    _check_predictions("plan predictions", plan_predictions, plans.table.quality.shape)


def _check_predictions(what: str, predictions: tuple[Predictions, ...], shape: tuple[int, ...]) -> None:
    for p in predictions:
        if p.quality.shape != shape or p.cost.shape != shape:
            raise ValueError(f"{what} {p.name!r} are {p.quality.shape}, their table is {shape}")
    names = [p.name for p in predictions]
    if len(set(names)) != len(names):
        raise ValueError(f"{what} need distinct names, got {names}")


def _progress(names: Iterable[str], enabled: bool) -> Iterable[str]:
    bar: Iterable[str] = tqdm(list(names), desc="replay", unit="dataset", disable=not enabled, leave=False)
    return bar
