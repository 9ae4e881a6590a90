"""The report stays meaningful on tables of other shapes than RouterBench's: graded quality, 2 and 20
models, models that all cost the same."""

import numpy as np
import pytest

from routeyard.evaluation.plan_outcomes import candidate_plans, plan_table
from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import ReplaySettings
from routeyard.evaluation.report.files import render_markdown, report_as_dict
from routeyard.evaluation.report.notes import dataset_notes
from routeyard.evaluation.report.plot import write_curves_png
from routeyard.predictor.split import split_by_dataset
from routeyard.predictor.training import train_rows
from tests.evaluation.tables import synthetic_table

DEFAULTS = ReplaySettings(bootstrap=50)


def router(result, name):
    return next(r for r in result.routers if r.curve.router == name)


def plans_of(table):
    return plan_table(table, candidate_plans(table, train_rows(table)[0]))


def with_agreement(settings):
    return ReplaySettings(routers=(*settings.routers, "agreement"), bootstrap=settings.bootstrap)


def test_graded_quality_keeps_the_oracle_above_zero_and_says_why_its_point_alone_would_not_be():
    table = synthetic_table(models=4, per_dataset=150, graded=True)
    assert ((table.quality > 0) & (table.quality < 1)).mean() > 0.5
    report = replay(table, DEFAULTS)
    for result in (report.pooled, *report.datasets):
        oracle, perfect = router(result, "oracle"), router(result, "wtp-perfect")
        assert oracle.aiq >= perfect.aiq >= result.zero_aiq
        assert oracle.gain.low > 0.0
    notes = [note for d in report.datasets for note in dataset_notes(d)]
    assert notes and all("oracle point" in note and "below the Zero router" in note for note in notes)
    assert "Note: RouterBench's oracle point" in render_markdown(report)


def test_binary_quality_with_a_cheap_oracle_point_needs_no_note():
    table = synthetic_table(models=4, per_dataset=150)
    report = replay(table, DEFAULTS)
    assert not [note for d in report.datasets for note in dataset_notes(d)]


def test_two_models_without_any_agreement_pair_replay_with_plans():
    table = synthetic_table(models=2, per_dataset=40)
    plans = plans_of(table)
    assert plans.table.models == table.models  # no pair: both models are needed as the pair
    report = replay(table, with_agreement(DEFAULTS), plans=plans)
    for result in (report.pooled, *report.datasets):
        assert router(result, "agreement").aiq == pytest.approx(router(result, "zero").aiq)
        assert router(result, "oracle").aiq >= router(result, "zero").aiq
    assert "| m01 |" in render_markdown(report)


def test_twenty_models_replay_with_every_agreement_pair_and_draw(tmp_path):
    table = synthetic_table(models=20, per_dataset=40)
    plans = plans_of(table)
    assert len(plans.plans) == 20 + 19 * 18 // 2
    report = replay(table, with_agreement(ReplaySettings(bootstrap=20)), plans=plans)
    for result in (report.pooled, *report.datasets):
        assert router(result, "agreement").aiq >= router(result, "zero").aiq
        assert len(result.single_models.labels) == 20
    write_curves_png(report, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_models_that_cost_the_same_score_quality_at_that_cost_and_the_report_says_so():
    table = synthetic_table(models=3, per_dataset=60, equal_cost=0.0001)
    report = replay(table, DEFAULTS)
    result = report.datasets[0]
    low, high = result.cost_range
    assert low == high == pytest.approx(0.0001)
    best = result.single_models.quality.max()
    assert router(result, "zero").aiq == pytest.approx(best)
    test = split_by_dataset(table)["alpha"].test
    assert router(result, "oracle").aiq == pytest.approx(table.quality[test].max(axis=1).mean())
    cascade = router(result, "cascade ε=0")
    assert cascade.hull.cost[0] > 0.0001  # it pays for several calls on some prompts
    assert cascade.aiq == 0.0 and cascade.aiq_routerbench > 0.0
    (note,) = dataset_notes(result)
    assert "zero width" in note and "cascade ε=0 $" in note and "dearer, not worse" in note
    assert "zero width" in render_markdown(report)
    assert any("single cost" in n for n in report_as_dict(report)["pooled"]["notes"])


def test_free_models_replay_without_dividing_by_a_zero_cost():
    table = synthetic_table(models=3, per_dataset=30, equal_cost=0.0)
    report = replay(table, ReplaySettings(routers=("zero", "cascade", "perfect"), bootstrap=10))
    zero = router(report.pooled, "zero")
    assert zero.aiq == zero.aiq_routerbench == pytest.approx(report.pooled.single_models.quality.max())
    assert np.isfinite([r.aiq_routerbench for r in report.pooled.routers]).all()
