import numpy as np
import pytest

from routeyard.evaluation.points import oracle_curve, point_of_choice, random_curve, single_model_curve

# Three prompts × three models (cheap, mid, dear).
QUALITY = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
COST = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])


def test_single_model_points_are_column_means():
    curve = single_model_curve(QUALITY, COST, ("cheap", "mid", "dear"))
    assert curve.cost.tolist() == [1.0, 2.0, 4.0]
    assert curve.quality == pytest.approx([1 / 3, 2 / 3, 2 / 3])


def test_oracle_takes_the_cheapest_best_and_pays_nothing_when_all_fail():
    curve = oracle_curve(QUALITY, COST)
    assert curve.quality[0] == pytest.approx(2 / 3)
    assert curve.cost[0] == pytest.approx((1.0 + 2.0 + 0.0) / 3)


def test_oracle_prefers_higher_fractional_quality_over_cheaper():
    curve = oracle_curve(np.array([[0.3, 0.9, 0.9]]), np.array([[1.0, 5.0, 3.0]]))
    assert curve.quality[0] == 0.9
    assert curve.cost[0] == 3.0


def test_random_is_the_mean_of_single_models():
    curve = random_curve(QUALITY, COST)
    assert curve.cost[0] == pytest.approx(7 / 3)
    assert curve.quality[0] == pytest.approx(5 / 9)


def test_point_of_choice():
    assert point_of_choice(QUALITY, COST, np.array([0, 1, 2])) == pytest.approx((7 / 3, 2 / 3))
