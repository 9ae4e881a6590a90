"""Where the gateway adds up its explored requests for the live AIQ (``routeyard.evaluation.live_aiq``).

A :class:`LiveAiqStore` takes one explored request at a time (:meth:`~LiveAiqStore.observe`: returns at
once, never raises) and gives every router's :class:`~routeyard.evaluation.live_aiq.LiveSummary`
(:meth:`~LiveAiqStore.summaries`, synchronous: what ``/v1/stats``, the dashboard and Prometheus read).

- :class:`InMemoryLiveAiq`: one process's tallies (no ``redis_url``).
- :class:`RedisLiveAiq`: every replica's. Observations are added to a local *delta* tally; a background
  task (:meth:`~RedisLiveAiq.start`) sends it every ``interval_seconds`` as ``HINCRBYFLOAT`` of each sum
  into the hash ``<prefix>:live:<router>`` (one pipeline, in a ``MULTI``: all of a delta or none), and
  reads back every router's hash, so :meth:`~RedisLiveAiq.summaries` shows the fleet's numbers as of the
  last round trip. The tallies are sums, so replicas adding to them in any order agree, and memory is
  bounded by routers × backends. Redis down: the delta is kept and sent later (added to, not lost),
  the failure counted in :attr:`~RedisLiveAiq.failures` and logged once until Redis answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.evaluation.live_aiq import ExploredAnswer, LiveSummary, LiveTally, live_summary

logger = logging.getLogger("routeyard.gateway")


class LiveAiqStore(Protocol):
    """Every router's tally of explored requests (see the module docstring)."""

    def observe(
        self, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
    ) -> None:
        """Add one explored request of ``router`` (``LiveTally.observe``); returns at once, never raises."""
        ...

    def summaries(self) -> dict[str, LiveSummary]:
        """Every router's live numbers, by router name."""
        ...


class InMemoryLiveAiq:
    """One process's tallies."""

    def __init__(self) -> None:
        self.tallies: dict[str, LiveTally] = defaultdict(LiveTally)

    def observe(
        self, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
    ) -> None:
        _observe(self.tallies[router], router, candidates, chosen, explored)

    def summaries(self) -> dict[str, LiveSummary]:
        return {router: live_summary(tally) for router, tally in sorted(self.tallies.items())}


class RedisLiveAiq:
    """Every replica's tallies, in Redis (see the module docstring)."""

    def __init__(self, url: str, *, prefix: str = "routeyard", interval_seconds: float = 0.5) -> None:
        self.prefix = prefix
        self.interval_seconds = interval_seconds
        self.failures = 0
        self._client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._delta: dict[str, LiveTally] = defaultdict(LiveTally)
        self._fleet: dict[str, LiveTally] = {}
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def observe(
        self, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
    ) -> None:
        _observe(self._delta[router], router, candidates, chosen, explored)

    def summaries(self) -> dict[str, LiveSummary]:
        return {router: live_summary(tally) for router, tally in sorted(self._fleet.items())}

    async def start(self) -> None:
        """Start exchanging with Redis in the background."""
        self._task = asyncio.create_task(self._exchange_forever())

    async def close(self) -> None:
        """Send what is pending (one try), stop, close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.exchange()
        await self._client.aclose()

    async def exchange(self) -> None:
        """Send the delta and read every router's tally back; never raises (a failure is counted)."""
        delta, self._delta = self._delta, defaultdict(LiveTally)
        try:
            await self._send(delta)
        except (redis.RedisError, OSError) as exc:
            self._merge_back(delta)
            self._failed(exc)
            return
        try:
            self._fleet = await self._read()
        except (redis.RedisError, OSError, ValueError) as exc:
            self._failed(exc)
            return
        if self._failing:
            logger.info("live AIQ: Redis answers again")
        self._failing = False

    async def _exchange_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.exchange()

    async def _send(self, delta: dict[str, LiveTally]) -> None:
        if not delta:
            return
        async with self._client.pipeline(transaction=True) as pipe:
            for router, tally in delta.items():
                pipe.sadd(f"{self.prefix}:live:routers", router)
                for name, value in tally.fields().items():
                    if value:
                        pipe.hincrbyfloat(f"{self.prefix}:live:{router}", name, value)
            await pipe.execute()

    async def _read(self) -> dict[str, LiveTally]:
        members = await self._client.smembers(f"{self.prefix}:live:routers")
        routers = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        async with self._client.pipeline(transaction=False) as pipe:
            for router in routers:
                pipe.hgetall(f"{self.prefix}:live:{router}")
            hashes = await pipe.execute()
        return {router: LiveTally.from_fields(fields) for router, fields in zip(routers, hashes, strict=True)}

    def _merge_back(self, delta: dict[str, LiveTally]) -> None:
        """Put an unsent ``delta`` back under what was observed meanwhile."""
        for router, tally in delta.items():
            pending = self._delta[router]
            for name, sums in tally.sums.items():
                for key, value in sums.items():
                    pending.sums[name][key] += value

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if not self._failing:
            logger.warning(
                "live AIQ: Redis failed (%s); explored requests kept to send later", type(exc).__name__
            )
        self._failing = True


def _observe(
    tally: LiveTally, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
) -> None:
    try:
        tally.observe(candidates, chosen, explored)
    except ValueError as exc:  # a bug of the explorer: counted out, never a failed request
        logger.error("live AIQ: router %s: an explored request was not counted (%s)", router, exc)
