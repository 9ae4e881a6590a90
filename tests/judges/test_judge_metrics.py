"""Judge error rates on hand-counted cases."""

import math

import numpy as np
import pytest

from routeyard.judges.judge_metrics import judge_error_rates


def test_rates_on_a_hand_counted_case():
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1])
    good = np.array([True, True, True, False, False, False])
    rates = judge_error_rates(scores, good, 0.5)
    assert rates.false_accept_rate == pytest.approx(1 / 3)  # 0.6 accepted, bad
    assert rates.false_reject_rate == pytest.approx(1 / 3)  # 0.3 rejected, good
    assert rates.error_rate == pytest.approx(2 / 6)
    assert rates.roc_auc == pytest.approx(8 / 9)  # 8 of 9 good-bad pairs ordered right
    assert (rates.n, rates.good) == (6, 3)


def test_a_perfect_judge_and_a_single_class():
    perfect = judge_error_rates(np.array([1.0, 0.0]), np.array([True, False]), 0.5)
    assert (perfect.false_accept_rate, perfect.false_reject_rate, perfect.roc_auc) == (0.0, 0.0, 1.0)
    only_good = judge_error_rates(np.array([0.7, 0.2]), np.array([True, True]), 0.5)
    assert math.isnan(only_good.roc_auc) and math.isnan(only_good.false_accept_rate)
    assert only_good.false_reject_rate == 0.5


def test_mismatched_shapes_are_an_error():
    with pytest.raises(ValueError, match="same"):
        judge_error_rates(np.zeros(3), np.zeros(2, dtype=bool), 0.5)
