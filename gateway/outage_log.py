"""How a store that talks to Redis reports Redis's outages: :class:`OutageLog`.

Every Redis-backed store of the gateway (the live AIQ, the request timeline, the response cache, session
affinity) carries on without Redis, so a failure is never raised to a request: it is counted and logged.
An outage of a minute would otherwise log once per request, so only the first failure of a burst is
logged (a warning naming the exception's type, never its message, which may quote a URL with a password),
and the first success after it (at info).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("routeyard.gateway")


class OutageLog:
    """Counts ``what``'s Redis failures (:attr:`failures`) and logs each burst's start and end.

    ``meanwhile`` says what the store does until Redis answers (``"misses until it answers"``)."""

    def __init__(self, what: str, meanwhile: str) -> None:
        self.what = what
        self.meanwhile = meanwhile
        self.failures = 0
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        """Count a failure; log it when it starts a burst."""
        self.failures += 1
        if not self.failing:
            logger.warning("%s: Redis failed (%s); %s", self.what, type(exc).__name__, self.meanwhile)
        self.failing = True

    def answered(self) -> None:
        """Redis answered: end the burst, if one was going on."""
        if self.failing:
            logger.info("%s: Redis answers again", self.what)
        self.failing = False
