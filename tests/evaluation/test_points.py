import numpy as np
import pytest

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.cascade import cascade_curve
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.points import (
    oracle_curve,
    oracle_point,
    point_of_choice,
    random_curve,
    single_model_curve,
)
from routeyard.evaluation.sweep import willingness_to_pay_curve
from routeyard.policy.willingness_to_pay import log_spaced_grid

# Three prompts × three models (cheap, mid, dear).
QUALITY = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
COST = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
MODELS = ("cheap", "mid", "dear")


def graded_table(n=300, seed=0):
    """Judge-like scores in [0, 1]: the dear model is best on most prompts, ties are rare."""
    rng = np.random.default_rng(seed)
    quality = np.clip(rng.normal([0.5, 0.6, 0.7], 0.2, (n, 3)), 0.0, 1.0)
    cost = np.tile([0.001, 0.002, 0.01], (n, 1)) * rng.uniform(0.5, 1.5, (n, 3))
    return quality, cost


def test_single_model_points_are_column_means():
    curve = single_model_curve(QUALITY, COST, MODELS)
    assert curve.cost.tolist() == [1.0, 2.0, 4.0]
    assert curve.quality == pytest.approx([1 / 3, 2 / 3, 2 / 3])


def test_oracle_point_takes_the_cheapest_best_and_pays_nothing_when_all_fail():
    curve = oracle_point(QUALITY, COST)
    assert curve.quality[0] == pytest.approx(2 / 3)
    assert curve.cost[0] == pytest.approx((1.0 + 2.0 + 0.0) / 3)


def test_oracle_point_prefers_higher_fractional_quality_over_cheaper():
    curve = oracle_point(np.array([[0.3, 0.9, 0.9]]), np.array([[1.0, 5.0, 3.0]]))
    assert curve.quality[0] == 0.9
    assert curve.cost[0] == 3.0


def test_on_graded_quality_the_oracle_point_alone_reads_below_zero_but_the_oracle_curve_does_not():
    quality, cost = graded_table()
    models = single_model_curve(quality, cost, MODELS)
    low, high = models.cost.min(), models.cost.max()
    zero = aiq(nondecreasing_hull(models.cost, models.quality), low, high)
    point = oracle_point(quality, cost)
    assert point.cost[0] > low  # the best answer is rarely the cheap one
    assert aiq(nondecreasing_hull(point.cost, point.quality), low, high) < zero
    oracle = oracle_curve(quality, cost, MODELS, log_spaced_grid())
    hull = nondecreasing_hull(oracle.cost, oracle.quality)
    assert aiq(hull, low, high) > zero
    # Above every single model at its own cost, and topping out at RouterBench's point.
    assert np.all(hull(models.cost) >= models.quality)
    assert hull.max_quality == pytest.approx(point.quality[0])
    assert hull.cost_at_max_quality == pytest.approx(point.cost[0])


def test_the_oracle_is_at_least_the_perfect_prediction_router():
    quality, cost = graded_table(seed=1)
    grid = log_spaced_grid()
    curve = oracle_curve(quality, cost, MODELS, grid)
    oracle = nondecreasing_hull(curve.cost, curve.quality)
    perfect = willingness_to_pay_curve("wtp-perfect", quality, cost, quality, cost, grid)
    assert np.all(oracle(perfect.cost) >= perfect.quality - 1e-12)


def test_random_is_the_mean_of_single_models():
    curve = random_curve(QUALITY, COST)
    assert curve.cost[0] == pytest.approx(7 / 3)
    assert curve.quality[0] == pytest.approx(5 / 9)


def test_point_of_choice():
    assert point_of_choice(QUALITY, COST, np.array([0, 1, 2])) == pytest.approx((7 / 3, 2 / 3))


def test_every_curve_keeps_the_prompt_outcomes_its_points_are_the_means_of():
    quality, cost = graded_table(50)
    grid = log_spaced_grid(8)
    curves = [
        single_model_curve(quality, cost, MODELS),
        oracle_curve(quality, cost, MODELS, grid),
        random_curve(quality, cost),
        willingness_to_pay_curve("wtp", quality, cost, quality, cost, grid),
        cascade_curve(
            quality,
            cost,
            np.arange(3),
            budgets=(0.001, 0.01),
            threshold=0.5,
            error_rate=0.1,
            rng=np.random.default_rng(0),
        ),
    ]
    for curve in curves:
        assert curve.outcomes is not None
        assert curve.outcomes.cost.shape == (50, len(curve.labels))
        np.testing.assert_allclose(curve.outcomes.cost.mean(axis=0), curve.cost)
        np.testing.assert_allclose(curve.outcomes.quality.mean(axis=0), curve.quality)
