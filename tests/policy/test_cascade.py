import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from routeyard.policy.cascade import cascade_order, should_escalate, walk_cascade


def stepwise(accepted, step_cost, budget, planned_cost=None):
    """The live gateway's loop: call step 0, then escalate while should_escalate says so, deciding on
    each next step's planned (predicted) cost and paying its real one."""
    planned_cost = step_cost if planned_cost is None else planned_cost
    stops, totals = [], []
    for verdicts, costs, planned in zip(accepted, step_cost, planned_cost, strict=True):
        step, spent = 0, costs[0]
        while step + 1 < len(costs) and should_escalate(verdicts[step], spent, planned[step + 1], budget):
            step += 1
            spent += costs[step]
        stops.append(step)
        totals.append(spent)
    return stops, totals


@st.composite
def cascades(draw):
    n, k = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    accepted = draw(arrays(np.bool_, (n, k)))
    cost = draw(arrays(np.float64, (n, k), elements=st.integers(0, 50).map(lambda x: x / 1000)))
    return accepted, cost, draw(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.1, 1.0]))


@given(cascades())
def test_walk_equals_the_step_by_step_rule(case):
    accepted, cost, budget = case
    walked = walk_cascade(accepted, cost, budget)
    stops, totals = stepwise(accepted, cost, budget)
    assert walked.stopped_at.tolist() == stops
    np.testing.assert_allclose(walked.total_cost, totals)


@given(cascades(), st.randoms(use_true_random=False))
def test_walk_on_predicted_costs_equals_the_gateways_loop(case, random):
    accepted, cost, budget = case
    planned = np.array([[random.randint(0, 50) / 1000 for _ in row] for row in cost]).reshape(cost.shape)
    walked = walk_cascade(accepted, cost, budget, planned_cost=planned)
    stops, totals = stepwise(accepted, cost, budget, planned)
    assert walked.stopped_at.tolist() == stops
    np.testing.assert_allclose(walked.total_cost, totals)


def test_a_cheap_prediction_lets_a_dear_call_through_and_a_dear_one_stops_a_cheap_call():
    accepted = np.zeros((2, 2), dtype=bool)
    cost = np.array([[0.1, 0.5], [0.1, 0.01]])
    planned = np.array([[0.1, 0.05], [0.1, 0.5]])
    stops = walk_cascade(accepted, cost, budget=0.2, planned_cost=planned)
    assert stops.stopped_at.tolist() == [1, 0]
    assert stops.total_cost.tolist() == [0.6, 0.1]


def test_first_model_always_called_even_over_budget():
    stops = walk_cascade(np.array([[False, True]]), np.array([[5.0, 1.0]]), budget=1.0)
    assert stops.stopped_at.tolist() == [0]
    assert stops.total_cost.tolist() == [5.0]


def test_escalates_until_accepted_and_costs_add_up():
    accepted = np.array([[False, False, True, True]])
    cost = np.array([[0.1, 0.2, 0.3, 0.4]])
    stops = walk_cascade(accepted, cost, budget=10.0)
    assert stops.stopped_at.tolist() == [2]
    assert stops.total_cost[0] == 0.1 + 0.2 + 0.3


def test_budget_stops_escalation_before_the_call_that_would_exceed_it():
    accepted = np.zeros((1, 3), dtype=bool)
    stops = walk_cascade(accepted, np.array([[0.1, 0.2, 0.3]]), budget=0.35)
    assert stops.stopped_at.tolist() == [1]


def test_should_escalate_on_scalars():
    assert should_escalate(False, 0.1, 0.15, 0.3) is True
    assert should_escalate(True, 0.1, 0.2, 0.3) is False
    assert should_escalate(False, 0.2, 0.2, 0.3) is False


def test_order_is_ascending_cost_and_stable():
    assert cascade_order(np.array([3.0, 1.0, 1.0, 2.0])).tolist() == [1, 2, 3, 0]
