"""A per-backend circuit breaker: stop calling an upstream that keeps failing, try it again later.

States (:attr:`CircuitBreaker.state`):

- **closed**: every call goes through. ``failures`` consecutive failed calls open the breaker.
- **open**: every call is refused for ``cooldown`` seconds since the last failure (the gateway falls back
  to another candidate at once instead of waiting on a dead upstream).
- **half-open**: the cooldown is over. Exactly one trial call goes through at a time; concurrent callers
  are refused while it is in flight. Its success closes the breaker; its failure opens it for another
  cooldown. A trial that ends without a verdict (:meth:`CircuitBreaker.released`: the request's own
  fault, a client that left) frees the slot for the next trial; a trial never reported at all (a caller's
  bug) stops blocking others after one more ``cooldown``.

The caller brackets every call: ``allows()`` first (True claims the half-open trial slot), then exactly
one of ``succeeded()``, ``failed()`` or ``released()``. Time comes from ``clock`` (seconds, monotonic),
injectable for tests. Not thread-safe: one breaker belongs to one event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown and a single half-open trial (see the module docstring).

    Args:
        failures: consecutive failed calls that open the breaker, ≥ 1.
        cooldown: seconds the breaker stays open before a trial call, > 0.
        clock: monotonic seconds.
    """

    def __init__(
        self, failures: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None  # a half-open trial call is in flight since then

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (cooled down: a trial may go, or is in flight)."""
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allows(self) -> bool:
        """Whether a call may go through now; in half-open state, True claims the one trial slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_started is not None and now - self._trial_started < self.cooldown:
            return False  # the trial is still in flight
        self._trial_started = now
        return True

    def succeeded(self) -> None:
        """A call succeeded: the breaker closes."""
        self._consecutive = 0
        self._opened_at = None
        self._trial_started = None

    def failed(self) -> None:
        """A call failed: after ``failures`` in a row, or any failed trial, the breaker opens (again)."""
        self._consecutive += 1
        if self._consecutive >= self.failures or self._opened_at is not None:
            self._opened_at = self._clock()
        self._trial_started = None

    def released(self) -> None:
        """A call ended without telling whether the upstream works: the trial slot, if it held it, frees."""
        self._trial_started = None
