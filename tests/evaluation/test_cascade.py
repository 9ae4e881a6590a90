import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routeyard.evaluation.cascade import BUDGETS, cascade_curve
from routeyard.evaluation.points import oracle_point
from routeyard.judges.simulated import simulated_verdicts
from routeyard.policy.cascade import cascade_order, walk_cascade


def binary_table(seed, n=200, m=5):
    rng = np.random.default_rng(seed)
    quality = (rng.random((n, m)) < rng.uniform(0.2, 0.9, m)).astype(float)
    cost = rng.uniform(0.0001, 0.01, (n, m)) * np.arange(1, m + 1)
    return quality, cost


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(BUDGETS[:5]))
def test_perfect_judge_never_keeps_a_wrong_answer_a_later_affordable_model_gets_right(seed, budget):
    quality, cost = binary_table(seed)
    order = cascade_order(cost.mean(axis=0))
    q, c = quality[:, order], cost[:, order]
    verdicts = simulated_verdicts(q, threshold=0.5, error_rate=0.0, rng=np.random.default_rng(0))
    stops = walk_cascade(verdicts, c, budget)
    running = np.cumsum(c, axis=1)
    for i, stop in enumerate(stops.stopped_at):
        assert stops.total_cost[i] == pytest.approx(c[i, : stop + 1].sum())  # costs add up
        if q[i, stop] < 0.5:
            later_affordable_right = (q[i, stop + 1 :] >= 0.5) & (running[i, stop + 1 :] <= budget)
            assert not later_affordable_right.any()


def test_unbounded_perfect_cascade_reaches_oracle_quality():
    quality, cost = binary_table(3)
    order = cascade_order(cost.mean(axis=0))
    curve = cascade_curve(
        quality, cost, order, budgets=(100.0,), threshold=0.5, error_rate=0.0, rng=np.random.default_rng(0)
    )
    assert curve.quality[0] == pytest.approx(oracle_point(quality, cost).quality[0])
    assert curve.cost[0] > oracle_point(quality, cost).cost[0]  # it pays for the rejected attempts


def test_a_noisy_judge_loses_quality():
    quality, cost = binary_table(4, n=2000)
    order = cascade_order(cost.mean(axis=0))

    def top_quality(error_rate):
        rng = np.random.default_rng(0)
        kwargs = {"budgets": (100.0,), "threshold": 0.5, "error_rate": error_rate, "rng": rng}
        return cascade_curve(quality, cost, order, **kwargs).quality[0]

    assert top_quality(0.4) < top_quality(0.1) < top_quality(0.0)


def test_curve_has_a_point_per_budget_and_cost_grows_with_budget():
    quality, cost = binary_table(5)
    order = cascade_order(cost.mean(axis=0))
    curve = cascade_curve(
        quality, cost, order, budgets=BUDGETS, threshold=0.5, error_rate=0.05, rng=np.random.default_rng(0)
    )
    assert curve.labels[0] == "B=0.001" and len(curve.cost) == len(BUDGETS)
    assert np.all(np.diff(curve.cost) >= 0)
