import math

import numpy as np
import pytest

from gateway.policy.willingness_to_pay import choose_by_willingness_to_pay, log_spaced_grid

QUALITY = np.array([[0.5, 0.8, 0.9], [0.9, 0.9, 0.2]])
COST = np.array([[0.001, 0.01, 0.1], [0.01, 0.001, 0.001]])


def test_zero_willingness_takes_the_cheapest_and_breaks_ties_by_quality():
    assert choose_by_willingness_to_pay(QUALITY, COST, 0.0).tolist() == [0, 1]


def test_infinite_willingness_takes_the_best_and_breaks_ties_by_cost():
    assert choose_by_willingness_to_pay(QUALITY, COST, math.inf).tolist() == [2, 1]


def test_finite_willingness_trades_quality_against_cost():
    # Row 0 at w = 1: utilities 0.499, 0.79, 0.8 → model 2. At w = 0.1: 0.49, 0.7, -0.1 → model 1.
    assert choose_by_willingness_to_pay(QUALITY, COST, 1.0)[0] == 2
    assert choose_by_willingness_to_pay(QUALITY, COST, 0.1)[0] == 1


def test_equal_utility_goes_to_the_cheaper_model():
    quality = np.array([[0.6, 0.5]])
    cost = np.array([[0.2, 0.1]])  # at w = 1: 0.4 and 0.4
    assert choose_by_willingness_to_pay(quality, cost, 1.0).tolist() == [1]


def test_grid_has_both_ends_and_is_log_spaced():
    grid = log_spaced_grid(64)
    assert len(grid) == 66 and grid[0] == 0.0 and math.isinf(grid[-1])
    assert grid[1] == pytest.approx(1e-6) and grid[-2] == pytest.approx(1e4)
    assert np.allclose(np.diff(np.log(grid[1:-1])), np.log(1e10) / 63)


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_rejects_invalid_willingness(bad):
    with pytest.raises(ValueError):
        choose_by_willingness_to_pay(QUALITY, COST, bad)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        choose_by_willingness_to_pay(QUALITY, COST[:, :2], 1.0)
