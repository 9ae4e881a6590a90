import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from routeyard.policy.willingness_to_pay import (
    choose_by_willingness_to_pay,
    log_spaced_grid,
    rank_by_willingness_to_pay,
)

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


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda m: st.tuples(
            arrays(np.float64, (3, m), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])),
            arrays(np.float64, (3, m), elements=st.sampled_from([0.0, 0.001, 0.01, 0.1])),
        )
    ),
    st.sampled_from([0.0, 1e-3, 0.1, 1.0, 10.0, math.inf]),
)
def test_the_ranking_starts_with_the_choice_and_holds_every_model_once(labels, willingness_to_pay):
    quality, cost = labels
    ranking = rank_by_willingness_to_pay(quality, cost, willingness_to_pay)
    chosen = choose_by_willingness_to_pay(quality, cost, willingness_to_pay)
    assert [row[0] for row in ranking] == chosen.tolist()
    assert all(sorted(row.tolist()) == list(range(quality.shape[1])) for row in ranking)


def test_the_ranking_drops_models_that_are_not_allowed():
    allowed = np.array([[True, False, True], [False, False, False]])
    ranking = rank_by_willingness_to_pay(QUALITY, COST, math.inf, allowed)
    assert ranking[0].tolist() == [2, 0] and ranking[1].tolist() == []
