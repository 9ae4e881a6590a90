"""Live AIQ from explored requests: unbiased per-backend estimates, the policy's point, AIQ and regret."""

import math

import numpy as np
import pytest

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.live_aiq import ExploredAnswer, LiveTally, live_summary

BACKENDS = ("cheap", "org/middle", "dear")
COST = {"cheap": 0.001, "org/middle": 0.004, "dear": 0.02}


def explore(n: int, seed: int = 0) -> tuple[LiveTally, np.ndarray, np.ndarray]:
    """n requests of two kinds (easy, hard); the policy sends easy ones to cheap and hard ones to dear;
    one other backend is explored uniformly (propensity 1/2). Returns the tally, the true (n, 3)
    qualities and the policy's choices."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.3
    p_right = np.where(hard[:, None], [0.2, 0.5, 0.9], [0.8, 0.9, 0.95])
    quality = (rng.random((n, 3)) < p_right).astype(float)
    chosen = np.where(hard, 2, 0)
    tally = LiveTally()
    for i in range(n):
        others = [j for j in range(3) if j != chosen[i]]
        e = others[rng.integers(2)]
        tally.observe(
            BACKENDS,
            ExploredAnswer(BACKENDS[chosen[i]], quality[i, chosen[i]], COST[BACKENDS[chosen[i]]]),
            ExploredAnswer(BACKENDS[e], quality[i, e], COST[BACKENDS[e]], propensity=0.5),
        )
    return tally, quality, chosen


def test_each_backend_is_estimated_without_the_policys_bias_and_within_its_interval():
    tally, quality, chosen = explore(20_000)
    summary = live_summary(tally)
    by_name = {b.name: b for b in summary.backends}
    for j, backend in enumerate(BACKENDS):
        estimate = by_name[backend]
        low, high = estimate.quality.interval
        assert low <= quality[:, j].mean() <= high
        assert estimate.cost.mean == pytest.approx(COST[backend], rel=0.05)
        assert estimate.quality.n == 20_000
    # what the policy chose alone would say "cheap is right 80 % of the time": it only saw easy prompts
    assert by_name["cheap"].quality.mean < 0.7
    rows = np.arange(len(chosen))
    assert summary.policy is not None
    assert summary.policy.quality.mean == pytest.approx(quality[rows, chosen].mean())


def test_aiq_and_regret_use_the_replays_definitions_on_the_estimated_points():
    summary = live_summary(explore(5_000, seed=1)[0])
    costs = [b.cost.mean for b in summary.backends]
    qualities = [b.quality.mean for b in summary.backends]
    zero = nondecreasing_hull(costs, qualities)
    assert summary.cost_range == (min(costs), max(costs))
    assert summary.zero_aiq == aiq(zero, min(costs), max(costs))
    assert summary.policy is not None
    policy = nondecreasing_hull([summary.policy.cost.mean], [summary.policy.quality.mean])
    assert summary.aiq == aiq(policy, min(costs), max(costs))
    assert summary.regret == pytest.approx(
        float(zero(summary.policy.cost.mean)) - summary.policy.quality.mean
    )
    assert summary.regret < 0  # routing hard prompts to dear and easy ones to cheap beats any one backend


def test_the_tally_survives_a_round_trip_through_a_flat_mapping_of_strings():
    tally = explore(50)[0]
    as_redis = {key.encode(): str(value).encode() for key, value in tally.fields().items()}
    assert live_summary(LiveTally.from_fields(as_redis)) == live_summary(tally)


def test_no_numbers_before_two_explored_requests_and_bad_propensities_are_refused():
    tally = LiveTally()
    assert math.isnan(live_summary(tally).aiq) and live_summary(tally).policy is None
    with pytest.raises(ValueError, match="propensity"):
        tally.observe(BACKENDS, ExploredAnswer("cheap", 1, 0), ExploredAnswer("dear", 1, 0, propensity=0))
    with pytest.raises(ValueError, match="not a candidate"):
        tally.observe(("cheap",), ExploredAnswer("cheap", 1, 0), ExploredAnswer("dear", 1, 0, propensity=1))
