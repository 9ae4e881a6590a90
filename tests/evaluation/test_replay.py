import numpy as np
import pytest

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.plan_outcomes import candidate_plans, plan_table
from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import JudgeScores, Predictions, ReplaySettings
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset
from routeyard.predictor.training import train_rows
from tests.evaluation.tables import synthetic_table

MODELS = ("small", "medium", "large")


def make_table(n_per_dataset=40, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * n_per_dataset
    skill = np.array([0.3, 0.6, 0.9])
    quality = (rng.random((n, 3)) < skill).astype(float)
    cost = np.tile([0.0001, 0.001, 0.01], (n, 1)) * rng.uniform(0.5, 1.5, (n, 1))
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["alpha"] * n_per_dataset + ["beta"] * n_per_dataset),
        prompts=np.array([("prompt",)] * n + [None], dtype=object)[:-1],
        models=MODELS,
        quality=quality,
        missing=np.zeros((n, 3), dtype=bool),
        cost=cost,
    )


def router(result, name):
    return next(r for r in result.routers if r.curve.router == name)


def test_scores_each_dataset_on_its_test_split_over_the_single_model_cost_range():
    table = make_table()
    report = replay(table, ReplaySettings(routers=("oracle", "zero", "random")))
    alpha = report.datasets[0]
    test = split_by_dataset(table)["alpha"].test
    assert (alpha.dataset, alpha.n_train, alpha.n_test) == ("alpha", 28, 12)
    means_q, means_c = table.quality[test].mean(axis=0), table.cost[test].mean(axis=0)
    np.testing.assert_allclose(alpha.single_models.quality, means_q)
    assert alpha.cost_range == pytest.approx((means_c.min(), means_c.max()))
    zero = router(alpha, "zero")
    assert zero.aiq == pytest.approx(aiq(nondecreasing_hull(means_c, means_q), *alpha.cost_range))
    oracle = router(alpha, "oracle")
    assert oracle.hull.max_quality == pytest.approx(table.quality[test].max(axis=1).mean())


def test_pooled_is_the_unweighted_mean_of_datasets():
    report = replay(make_table(), ReplaySettings(routers=("zero", "cascade")))
    for position, pooled in enumerate(report.pooled.routers):
        per_dataset = [d.routers[position] for d in report.datasets]
        assert pooled.aiq == pytest.approx(np.mean([r.aiq for r in per_dataset]))
        np.testing.assert_allclose(pooled.curve.cost, np.mean([r.curve.cost for r in per_dataset], axis=0))
    assert [r.curve.router for r in report.pooled.routers][:2] == ["zero", "cascade ε=0"]
    assert len(report.pooled.routers) == 1 + 6  # one cascade curve per judge error rate


def test_perfect_predictions_route_at_least_as_well_as_the_zero_router():
    report = replay(make_table(200), ReplaySettings(routers=("zero", "perfect")))
    for result in [report.pooled, *report.datasets]:
        assert router(result, "wtp-perfect").aiq >= router(result, "zero").aiq


def test_uninformative_predictions_route_no_better_than_perfect_ones():
    table = make_table(200)
    flat = Predictions(np.full(table.quality.shape, 0.5), table.cost.copy(), name="flat")
    report = replay(table, ReplaySettings(routers=("perfect", "predictions")), predictions=flat)
    assert router(report.pooled, "wtp-flat").aiq < router(report.pooled, "wtp-perfect").aiq


def test_selected_datasets_only():
    report = replay(make_table(), ReplaySettings(routers=("zero",), datasets=("beta",)))
    assert [d.dataset for d in report.datasets] == ["beta"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ReplaySettings(routers=("zero", "clairvoyant")), "unknown routers"),
        (ReplaySettings(routers=("zero",), datasets=("gamma",)), "not in the table"),
        (ReplaySettings(routers=("predictions",)), "needs predictions"),
    ],
)
def test_bad_settings_are_clear_errors(settings, message):
    with pytest.raises(ValueError, match=message):
        replay(make_table(), settings)


def test_a_truthful_real_judge_replays_like_the_error_free_simulated_one():
    table = make_table()
    truthful = JudgeScores(table.quality.copy(), "judge=truth")
    settings = ReplaySettings(routers=("cascade", "judged"), error_rates=(0.0,))
    report = replay(table, settings, judge_scores=(truthful,))
    for result in (*report.datasets, report.pooled):
        simulated, judged = router(result, "cascade ε=0"), router(result, "cascade judge=truth")
        np.testing.assert_allclose(judged.curve.quality, simulated.curve.quality)
        np.testing.assert_allclose(judged.curve.cost, simulated.curve.cost)
        (measured,) = result.judges
        assert measured.rates.error_rate == 0.0 and measured.rates.roc_auc == 1.0


def test_an_inverted_judge_is_measured_as_always_wrong_and_loses_quality():
    table = make_table()
    inverted = JudgeScores(1.0 - table.quality, "judge=liar")
    report = replay(
        table, ReplaySettings(routers=("cascade", "judged"), error_rates=(0.0,)), judge_scores=(inverted,)
    )
    (measured,) = report.pooled.judges
    assert measured.rates.false_accept_rate == 1.0 and measured.rates.false_reject_rate == 1.0
    assert router(report.pooled, "cascade judge=liar").aiq < router(report.pooled, "cascade ε=0").aiq


def test_the_judged_router_needs_scores_of_the_tables_shape():
    table = make_table()
    with pytest.raises(ValueError, match="needs a judge"):
        replay(table, ReplaySettings(routers=("judged",)))
    with pytest.raises(ValueError, match="judge scores"):
        replay(table, ReplaySettings(routers=("judged",)), judge_scores=(JudgeScores(np.zeros((2, 3))),))


def plan_setup():
    table = synthetic_table(models=4, per_dataset=120)
    return table, plan_table(table, candidate_plans(table, train_rows(table)[0]))


def test_agreement_plans_extend_the_zero_router_on_the_same_cost_range():
    table, plans = plan_setup()
    without = replay(table, ReplaySettings(routers=("zero",)))
    report = replay(table, ReplaySettings(routers=("zero", "agreement")), plans=plans)
    for before, after in zip(
        (without.pooled, *without.datasets), (report.pooled, *report.datasets), strict=True
    ):
        assert after.cost_range == before.cost_range and after.zero_aiq == before.zero_aiq
        agreement = router(after, "agreement")
        assert agreement.aiq >= router(after, "zero").aiq
        assert agreement.curve.labels == plans.table.models  # every plan's point, pairs included


def test_plan_predictions_route_among_plans_and_are_scored_on_plan_outcomes():
    table, plans = plan_setup()
    truth = Predictions(plans.table.quality.copy(), plans.table.cost.copy(), name="truth")
    settings = ReplaySettings(routers=("agreement", "plan-predictions"), bootstrap=50)
    report = replay(table, settings, plans=plans, plan_predictions=(truth,))
    for result in (report.pooled, *report.datasets):
        routed = router(result, "wtp-plan-truth")
        assert routed.aiq >= router(result, "agreement").aiq - 1e-3  # per-prompt truth beats static plans
        assert routed.gain is not None and routed.gain.excludes_zero
    test = split_by_dataset(table)["alpha"].test
    best_plan = plans.table.quality[test].max(axis=1).mean()
    assert router(report.datasets[0], "wtp-plan-truth").hull.max_quality == pytest.approx(best_plan)


def test_plans_must_fit_the_table_and_their_routers_need_them():
    table, plans = plan_setup()
    with pytest.raises(ValueError, match="need a plan table"):
        replay(table, ReplaySettings(routers=("agreement",)))
    other = synthetic_table(models=4, per_dataset=100)
    with pytest.raises(ValueError, match="not built from the replayed table"):
        replay(other, ReplaySettings(routers=("agreement",)), plans=plans)
    with pytest.raises(ValueError, match="needs predictions over the plans"):
        replay(table, ReplaySettings(routers=("plan-predictions",)), plans=plans)
    wrong = Predictions(table.quality.copy(), table.cost.copy(), name="models")  # model columns, not plans
    with pytest.raises(ValueError, match="plan predictions 'models'"):
        replay(table, ReplaySettings(routers=("plan-predictions",)), plans=plans, plan_predictions=(wrong,))
