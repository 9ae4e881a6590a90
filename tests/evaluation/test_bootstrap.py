import numpy as np
import pytest

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.bootstrap import gain_interval, gain_replicates, resample_weights
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.points import Curve, random_curve, single_model_curve
from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import ReplaySettings
from routeyard.evaluation.sweep import willingness_to_pay_curve
from routeyard.policy.willingness_to_pay import log_spaced_grid
from tests.evaluation.tables import synthetic_table


def router(result, name):
    return next(r for r in result.routers if r.curve.router == name)


def test_weights_are_draw_shares_and_fixed_by_the_seed():
    weights = resample_weights(7, 50, np.random.default_rng(3))
    assert weights.shape == (50, 7)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert set(np.unique(weights * 7)) <= set(range(8))  # whole draws of 7 prompts
    np.testing.assert_array_equal(weights, resample_weights(7, 50, np.random.default_rng(3)))


def test_the_undrawn_sample_reproduces_each_routers_gain_over_zero():
    table = synthetic_table(models=4, per_dataset=80, datasets=("alpha",))
    quality, cost = table.quality, table.cost
    models = single_model_curve(quality, cost, table.models)
    perfect = willingness_to_pay_curve("perfect", quality, cost, quality, cost, log_spaced_grid())
    curves = [perfect, random_curve(quality, cost)]
    every_prompt_once = np.full((1, len(quality)), 1.0 / len(quality))
    (gains,) = gain_replicates(curves, models, every_prompt_once)
    cost_range = models.cost.min(), models.cost.max()
    zero = aiq(nondecreasing_hull(models.cost, models.quality), *cost_range)
    expected = [aiq(nondecreasing_hull(c.cost, c.quality), *cost_range) - zero for c in curves]
    np.testing.assert_allclose(gains, expected, atol=1e-12)


def test_a_router_identical_to_zero_gains_exactly_nothing_in_every_replicate():
    table = synthetic_table(models=3, per_dataset=50, datasets=("alpha",))
    models = single_model_curve(table.quality, table.cost, table.models)
    twin = single_model_curve(table.quality, table.cost, table.models, router="twin")
    replicates = gain_replicates([twin], models, resample_weights(50, 200, np.random.default_rng(0)))
    assert np.all(replicates == 0.0)
    assert not gain_interval(0.0, replicates[:, 0]).excludes_zero


def test_a_curve_without_prompt_outcomes_cannot_be_resampled():
    table = synthetic_table(per_dataset=10, datasets=("alpha",))
    models = single_model_curve(table.quality, table.cost, table.models)
    bare = Curve("bare", np.array([0.001]), np.array([0.5]), ("x",))
    with pytest.raises(ValueError, match="no per-prompt outcomes"):
        gain_replicates([bare], models, resample_weights(10, 5, np.random.default_rng(0)))


def test_intervals_separate_clear_winners_and_losers_and_repeat_for_a_seed():
    table = synthetic_table(models=4, per_dataset=150)
    settings = ReplaySettings(routers=("perfect", "zero", "random"), bootstrap=300)
    report = replay(table, settings)
    for result in (report.pooled, *report.datasets):
        perfect, zero, rand = (router(result, name).gain for name in ("wtp-perfect", "zero", "random"))
        assert perfect.low > 0.0 and perfect.excludes_zero
        assert rand.high < 0.0 and rand.excludes_zero
        assert zero.gain == zero.low == zero.high == 0.0
        assert perfect.low <= perfect.gain <= perfect.high and perfect.resamples == 300
    again = replay(table, settings)
    other_seed = replay(table, ReplaySettings(routers=settings.routers, bootstrap=300, seed=7))
    assert router(again.pooled, "wtp-perfect").gain == router(report.pooled, "wtp-perfect").gain
    assert router(other_seed.pooled, "wtp-perfect").gain != router(report.pooled, "wtp-perfect").gain


def test_pooled_gain_is_the_mean_of_the_dataset_gains_and_its_interval_is_narrower():
    table = synthetic_table(models=4, per_dataset=100, datasets=("alpha", "beta", "gamma", "delta"))
    report = replay(table, ReplaySettings(routers=("perfect",), bootstrap=400))
    per_dataset = [router(d, "wtp-perfect").gain for d in report.datasets]
    pooled = router(report.pooled, "wtp-perfect").gain
    assert pooled.gain == pytest.approx(np.mean([g.gain for g in per_dataset]))
    # Independent draws per dataset average out: the pooled interval is narrower than the typical one.
    assert pooled.high - pooled.low < np.median([g.high - g.low for g in per_dataset])


def test_a_datasets_interval_does_not_depend_on_which_other_datasets_are_replayed():
    table = synthetic_table(models=3, per_dataset=60)
    both = replay(table, ReplaySettings(routers=("perfect",), bootstrap=100))
    beta = replay(table, ReplaySettings(routers=("perfect",), datasets=("beta",), bootstrap=100))
    assert router(beta.datasets[0], "wtp-perfect").gain == router(both.datasets[1], "wtp-perfect").gain


def test_no_bootstrap_no_interval():
    report = replay(synthetic_table(per_dataset=20), ReplaySettings(routers=("zero",)))
    assert router(report.pooled, "zero").gain is None
    with pytest.raises(ValueError, match="bootstrap"):
        replay(synthetic_table(per_dataset=20), ReplaySettings(routers=("zero",), bootstrap=-1))
