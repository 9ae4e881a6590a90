import json
import math

import numpy as np
import pytest

from routeyard.policy.pacing import PacingController, PacingState, PacingTuning

TUNING = PacingTuning(w_min=1e-3, w_max=10.0, w_initial=0.01, response_seconds=50.0)


def market(w, rng):
    """A synthetic stream's spend for one request at w: rises as w^0.7 (capped, like a best model's
    price), times lognormal noise; at w = 0.1 it is $0.002 on average before noise."""
    return min(0.01, 0.002 * (w / 0.1) ** 0.7) * rng.lognormal(-0.5, 1.0)


def stream(controller, steps, spend, seed=0, elapsed=1.0):
    rng = np.random.default_rng(seed)
    state, ws = controller.initial_state(), []
    for _ in range(steps):
        ws.append(state.willingness_to_pay)
        state = controller.update(
            state, spent_usd=spend(state.willingness_to_pay, rng), elapsed_seconds=elapsed
        )
    return state, np.array(ws)


@pytest.mark.parametrize("target", [0.0005, 0.001, 0.003])
@pytest.mark.parametrize("seed", [0, 1])
def test_spend_tracks_the_target_on_a_noisy_stream(target, seed):
    controller = PacingController(target, TUNING)
    state, ws = stream(controller, 2000, market, seed)
    assert state.spent_usd / (target * state.elapsed_seconds) == pytest.approx(1.0, abs=0.03)
    late = ws[1000:]  # w settles: the second half moves little on a log scale
    assert np.std(np.log(late)) < 0.6


def test_w_stays_within_its_bounds_and_sits_on_them_when_the_target_is_out_of_reach():
    never_spends = PacingController(1.0, TUNING)
    state, ws = stream(never_spends, 500, lambda w, rng: 0.0)
    assert ws.min() >= TUNING.w_min and ws.max() <= TUNING.w_max
    assert state.willingness_to_pay == TUNING.w_max
    always_overspends = PacingController(1e-6, TUNING)
    state, ws = stream(always_overspends, 500, lambda w, rng: 0.01)
    assert ws.min() >= TUNING.w_min and state.willingness_to_pay == TUNING.w_min


def test_no_windup_w_leaves_the_upper_bound_soon_after_spending_resumes():
    controller = PacingController(0.001, TUNING)
    state, _ = stream(controller, 5000, lambda w, rng: 0.0)  # a long stretch where nothing is spent
    assert state.willingness_to_pay == TUNING.w_max
    steps = 0
    while state.willingness_to_pay == TUNING.w_max and steps < 1000:
        state = controller.update(state, spent_usd=0.01, elapsed_seconds=1.0)  # then 10× the target
        steps += 1
    assert steps <= 2 * TUNING.response_seconds


def test_a_long_idle_period_is_forgiven_beyond_the_deficit_cap():
    controller = PacingController(0.001, TUNING)
    state = controller.update(controller.initial_state(), spent_usd=0.0, elapsed_seconds=86_400.0)
    cap = TUNING.deficit_cap * 0.001 * TUNING.response_seconds
    assert state.deficit_usd == pytest.approx(cap)
    assert state.elapsed_seconds == 86_400.0


def test_seconds_or_requests_is_only_a_choice_of_time_unit():
    """One request per second with a $/request target and τ in requests gives the same w as requests
    every 0.25 s with a $/s target four times higher and τ in seconds a quarter as long."""
    per_request = PacingController(0.001, TUNING)
    quarter = PacingTuning(w_min=1e-3, w_max=10.0, w_initial=0.01, response_seconds=12.5)
    per_second = PacingController(0.004, quarter)
    _, by_request = stream(per_request, 300, market, seed=3)
    _, by_second = stream(per_second, 300, market, seed=3, elapsed=0.25)
    np.testing.assert_allclose(by_request, by_second, rtol=1e-9)


def test_state_round_trips_through_a_dict_of_floats():
    controller = PacingController(0.001, TUNING)
    state, _ = stream(controller, 50, market)
    stored = json.loads(json.dumps(state.to_dict()))
    assert all(isinstance(v, float) for v in stored.values())
    assert PacingState.from_dict(stored) == state
    resumed = controller.update(PacingState.from_dict(stored), spent_usd=0.002, elapsed_seconds=1.0)
    assert resumed == controller.update(state, spent_usd=0.002, elapsed_seconds=1.0)


def test_the_first_w_is_the_initial_one():
    assert PacingController(0.001, TUNING).initial_state().willingness_to_pay == 0.01


@pytest.mark.parametrize(
    "bad",
    [
        dict(w_min=0.0),
        dict(w_max=math.inf),
        dict(w_initial=100.0),
        dict(response_seconds=0.0),
        dict(proportional_gain=-1.0),
        dict(deficit_cap=0.0),
    ],
)
def test_nonsense_tuning_is_refused(bad):
    with pytest.raises(ValueError):
        PacingTuning(**{**dict(w_min=1e-3, w_max=10.0, w_initial=0.01), **bad})


@pytest.mark.parametrize("spent, elapsed", [(-0.1, 1.0), (0.1, -1.0), (math.nan, 1.0), (0.1, math.inf)])
def test_impossible_observations_are_refused(spent, elapsed):
    controller = PacingController(0.001, TUNING)
    with pytest.raises(ValueError):
        controller.update(controller.initial_state(), spent_usd=spent, elapsed_seconds=elapsed)


def test_a_target_must_be_a_positive_rate():
    for target in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError):
            PacingController(target, TUNING)
