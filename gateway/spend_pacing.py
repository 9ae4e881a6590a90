"""Budget pacing in the gateway: a router's willingness to pay w steered so its spend tracks a target.

A :class:`SpendPacer` runs ``routeyard.policy.pacing.PacingController`` (a PI controller on log w) over
the $ the router's requests really cost. Its state is a ``PacingStore``'s
(``routeyard.gateway.pacing_store``): in memory (one process) or in Redis, where every replica pacing
the same router shares it and so routes with the same w.

Batching. A request's $ is added to a local sum at once (:meth:`SpendPacer.observe`); at most one
*exchange* with the store runs at a time per pacer, and at most one every ``interval_seconds`` (0.1 s),
in the background, never on a request's path. An exchange sends the local sum to the store (added to
the shared ``pending_usd``) and reads the shared state; when that state was last updated at least an
interval ago, the controller's update over (all pending $, the time since) is proposed and applied only
if no replica updated it meanwhile (a version number). Each step is one call of one Lua script, so spend
is never lost nor counted twice, and the clock is Redis's (``TIME``), the same for every replica.

Failures. A store error (Redis down, a timeout, a damaged state) keeps the last w and the unsent $
(sent with the next exchange), is counted (:attr:`SpendPacer.store_failures`) and logged once until the
store answers again. A request never waits for the store, so it never fails because of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from routeyard.gateway.pacing_store import PacingStore, PacingStoreError, Proposal, Snapshot
from routeyard.policy.pacing import PacingController, PacingState

logger = logging.getLogger("routeyard.gateway")

UPDATE_INTERVAL_SECONDS = 0.1
"""The shortest time between two exchanges of one pacer with its store, and between two updates of the
shared state: spend is batched over it."""


@dataclass(frozen=True)
class PacingReading:
    """What a pacer says about itself (for metrics): the w it routes with, the recent spend rate (an
    exponential average over the controller's response time, over every replica when shared), the
    target, in $ per second, and how many exchanges with its store failed."""

    willingness_to_pay: float
    spend_usd_per_second: float
    target_usd_per_second: float
    store_failures: int


@dataclass
class SpendPacer:
    """Steers w so the $ :meth:`observe`\\ d tracks ``controller``'s target (see the module docstring).

    :attr:`willingness_to_pay` is the w to route with now; it starts at the controller's ``w_initial``
    and stays in its ``[w_min, w_max]``.
    """

    controller: PacingController
    store: PacingStore
    interval_seconds: float = UPDATE_INTERVAL_SECONDS
    willingness_to_pay: float = field(init=False)
    store_failures: int = field(init=False, default=0)
    _spend_rate: float = field(init=False, default=0.0)
    _seen: PacingState | None = field(init=False, default=None)
    _unsent_usd: float = field(init=False, default=0.0)
    _last_exchange: float = field(init=False, default=-math.inf)
    _task: asyncio.Task[None] | None = field(init=False, default=None)
    _store_down: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.willingness_to_pay = self.controller.tuning.w_initial

    def current(self) -> float:
        """The w to route with now (an exchange is started in the background when one is due)."""
        self._maybe_exchange()
        return self.willingness_to_pay

    def observe(self, cost_usd: float) -> None:
        """Count ``cost_usd`` $ spent by a request (negative or non-finite amounts are ignored)."""
        if 0.0 < cost_usd < math.inf:
            self._unsent_usd += cost_usd
        self._maybe_exchange()

    def reading(self) -> PacingReading:
        return PacingReading(
            self.willingness_to_pay,
            self._spend_rate,
            self.controller.target_usd_per_second,
            self.store_failures,
        )

    async def flush(self) -> None:
        """Wait for the exchange running in the background, if any, then exchange once more: everything
        observed so far is then in the store (unless it failed)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.exchange()

    async def exchange(self) -> None:
        """Send the unsent $, update the shared state if it is due, and adopt its w; a store failure is
        counted and logged (once while it lasts), never raised."""
        spend, self._unsent_usd = self._unsent_usd, 0.0
        try:
            snapshot = await self.store.exchange(spend, None)
        except PacingStoreError as exc:
            self._unsent_usd += spend  # not in the store: sent again with the next exchange
            self._failed(exc)
            return
        if snapshot.updated_at is None or snapshot.now - snapshot.updated_at >= self.interval_seconds:
            try:
                snapshot = await self.store.exchange(0.0, self._proposal(snapshot))
            except PacingStoreError as exc:
                self._failed(exc)
                return
        self._adopt(snapshot)

    def _proposal(self, snapshot: Snapshot) -> Proposal:
        if snapshot.state is None or snapshot.updated_at is None:  # the first update: time starts now
            state, elapsed = self.controller.initial_state(), 0.0
        else:
            state, elapsed = snapshot.state, max(snapshot.now - snapshot.updated_at, 0.0)
        updated = self.controller.update(state, snapshot.pending_usd, elapsed)
        return Proposal(snapshot.version, updated, snapshot.pending_usd, snapshot.now)

    def _adopt(self, snapshot: Snapshot) -> None:
        if self._store_down:
            logger.info("pacing store answers again; w is shared again")
            self._store_down = False
        state = snapshot.state
        if state is None:
            return
        previous = self._seen
        if previous is not None and state.elapsed_seconds > previous.elapsed_seconds:
            seconds = state.elapsed_seconds - previous.elapsed_seconds
            rate = (state.spent_usd - previous.spent_usd) / seconds
            weight = 1.0 - math.exp(-seconds / self.controller.tuning.response_seconds)
            self._spend_rate += weight * (rate - self._spend_rate)
        self._seen = state
        self.willingness_to_pay = state.willingness_to_pay

    def _failed(self, error: PacingStoreError) -> None:
        self.store_failures += 1
        if not self._store_down:
            logger.warning(
                "pacing store failed (%s); routing on the last w %g", error, self.willingness_to_pay
            )
            self._store_down = True

    def _maybe_exchange(self) -> None:
        """Start an exchange in the background when none runs and the last began an interval ago."""
        if self._task is not None and not self._task.done():
            return
        now = time.monotonic()
        if now - self._last_exchange < self.interval_seconds:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (offline use): nothing to exchange with
            return
        self._last_exchange = now
        self._task = loop.create_task(self.exchange())
