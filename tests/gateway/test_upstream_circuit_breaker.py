"""The circuit breaker's states under an injected clock: closed, open, half-open with one trial."""

import pytest

from routeyard.gateway.backends.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def opened(clock, failures=3, cooldown=10.0):
    breaker = CircuitBreaker(failures, cooldown, clock=clock)
    for _ in range(failures):
        assert breaker.allows()
        breaker.failed()
    return breaker


def test_it_opens_after_n_consecutive_failures_and_a_success_resets_the_count(clock):
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    for _ in range(2):
        breaker.failed()
    breaker.succeeded()
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed" and breaker.allows()  # 2 in a row, not 4
    breaker.failed()
    assert breaker.state == "open"
    assert not breaker.allows()
    clock.now += 9.99
    assert not breaker.allows()


def test_after_the_cooldown_exactly_one_trial_goes_through(clock):
    breaker = opened(clock)
    clock.now += 10.0
    assert breaker.state == "half-open"
    assert breaker.allows()  # the trial
    assert not breaker.allows()  # a concurrent caller while the trial is in flight
    assert not breaker.allows()
    assert breaker.state == "half-open"


def test_a_successful_trial_closes_the_breaker(clock):
    breaker = opened(clock)
    clock.now += 10.0
    assert breaker.allows()
    breaker.succeeded()
    assert breaker.state == "closed"
    assert all(breaker.allows() for _ in range(5))
    breaker.failed()
    assert breaker.state == "closed"  # the count started again


def test_a_failed_trial_opens_it_for_another_cooldown(clock):
    breaker = opened(clock)
    clock.now += 10.0
    assert breaker.allows()
    clock.now += 2.0
    breaker.failed()
    assert breaker.state == "open" and not breaker.allows()
    clock.now += 9.0
    assert not breaker.allows()  # the new cooldown counts from the failed trial
    clock.now += 1.0
    assert breaker.allows()  # the next trial
    assert not breaker.allows()


def test_a_trial_without_verdict_frees_the_slot_for_the_next(clock):
    breaker = opened(clock)
    clock.now += 10.0
    assert breaker.allows()
    breaker.released()  # e.g. the request's own 400, or the client left
    assert breaker.state == "half-open"
    assert breaker.allows()
    assert not breaker.allows()


def test_a_trial_never_reported_stops_blocking_after_another_cooldown(clock):
    breaker = opened(clock)
    clock.now += 10.0
    assert breaker.allows()
    clock.now += 9.0
    assert not breaker.allows()
    clock.now += 1.0
    assert breaker.allows()
