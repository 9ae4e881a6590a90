"""A per-backend circuit breaker: stop calling an upstream that keeps failing, try it again later.

After ``failures`` consecutive failed calls the breaker opens: calls are refused for ``cooldown`` seconds
(the gateway falls back to another candidate at once instead of waiting on a dead upstream). After the
cooldown one trial call goes through (half-open); success closes the breaker, failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown (see the module docstring)."""

    def __init__(
        self, failures: int = 5, cooldown: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self.cooldown else "open"

    def allows(self) -> bool:
        """Whether a call may go through now."""
        return self.state != "open"

    def succeeded(self) -> None:
        self._consecutive = 0
        self._opened_at = None

    def failed(self) -> None:
        self._consecutive += 1
        if self._consecutive >= self.failures or self._opened_at is not None:
            self._opened_at = self._clock()
