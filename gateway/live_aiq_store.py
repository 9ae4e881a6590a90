"""Where the gateway adds up its explored requests for the live AIQ (``routeyard.evaluation.live_aiq``).

A :class:`LiveAiqStore` takes one explored request at a time (:meth:`~LiveAiqStore.observe`: returns at
once, never raises) and gives every router's :class:`~routeyard.evaluation.live_aiq.LiveSummary`
(:meth:`~LiveAiqStore.summaries`, synchronous: what ``/v1/stats``, the dashboard and Prometheus read).

- :class:`InMemoryLiveAiq`: one process's tallies (no ``redis_url``).
- :class:`RedisLiveAiq`: every replica's. Observations are added to a local *delta* tally; a background
  task (:meth:`~RedisLiveAiq.start`) sends it every ``interval_seconds`` as ``HINCRBYFLOAT`` of each sum
  into the hash ``<prefix>:live:<router>``, and reads back every router's hash, so
  :meth:`~RedisLiveAiq.summaries` shows the fleet's numbers as of the last round trip. The tallies are
  sums, so replicas adding to them in any order agree, and memory is bounded by routers × backends.

Exactly once: a delta taken for sending gets a random id and is applied by one Lua script (atomic) only
if ``SET <prefix>:live:delta:<id> NX EX 86400`` succeeds. While Redis fails, the same delta is resent
with the same id (new observations gather in the next one), so a delta Redis applied but whose answer
was lost is not added twice. The failure is counted in :attr:`~RedisLiveAiq.outages` and logged once
until Redis answers again; what is still unsent at :meth:`~RedisLiveAiq.close` is logged as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.evaluation.live_aiq import POLICY, ExploredAnswer, LiveSummary, LiveTally, live_summary
from routeyard.gateway.outage_log import OutageLog

logger = logging.getLogger("routeyard.gateway")

_MARKER_TTL_SECONDS = 86_400
# KEYS: 1 the delta's marker, 2 the set of routers. ARGV: 1 marker ttl, 2 the hash key prefix
# ("<prefix>:live:"), then per router: its name, its field count n, n (field, increment) pairs.
_APPLY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local at = 3
while at <= #ARGV do
  local router, n = ARGV[at], tonumber(ARGV[at + 1])
  redis.call('SADD', KEYS[2], router)
  for i = 0, n - 1 do
    redis.call('HINCRBYFLOAT', ARGV[2] .. router, ARGV[at + 2 + 2 * i], ARGV[at + 3 + 2 * i])
  end
  at = at + 2 + 2 * n
end
return 1
"""


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
        self.outages = OutageLog("live AIQ", "explored requests kept to send later")
        self._client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._delta: dict[str, LiveTally] = defaultdict(LiveTally)
        self._sending: tuple[str, dict[str, LiveTally]] | None = None  # (marker, delta) until applied
        self._apply = self._client.register_script(_APPLY)
        self._fleet: dict[str, LiveTally] = {}
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
        unsent = [self._delta] + ([self._sending[1]] if self._sending else [])
        lost = sum(int(t.sums[POLICY]["n"]) for d in unsent for t in d.values() if POLICY in t.sums)
        if lost:
            logger.warning("live AIQ: closed with %d explored requests not sent to Redis (lost)", lost)
        await self._client.aclose()

    async def exchange(self) -> None:
        """Send the delta being resent, then the one gathered, and read every router's tally back; never
        raises (a failure is counted)."""
        try:
            while self._sending is not None or self._delta:  # the one being resent first, then the rest
                if self._sending is None:
                    self._sending = (f"{self.prefix}:live:delta:{uuid.uuid4().hex}", self._delta)
                    self._delta = defaultdict(LiveTally)
                await self._send(*self._sending)
                self._sending = None
        except (redis.RedisError, OSError) as exc:
            self.outages.failed(exc)
            return
        try:
            self._fleet = await self._read()
        except (redis.RedisError, OSError, ValueError) as exc:
            self.outages.failed(exc)
            return
        self.outages.answered()

    async def _exchange_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.exchange()

    async def _send(self, marker: str, delta: dict[str, LiveTally]) -> None:
        """Apply ``delta`` once (the script skips a ``marker`` it has seen)."""
        args: list[str | int | float] = [_MARKER_TTL_SECONDS, f"{self.prefix}:live:"]
        for router, tally in delta.items():
            fields = [(name, value) for name, value in tally.fields().items() if value]
            args += [router, len(fields), *(x for pair in fields for x in (pair[0], repr(pair[1])))]
        await self._apply(keys=[marker, f"{self.prefix}:live:routers"], args=args)

    async def _read(self) -> dict[str, LiveTally]:
        members = await self._client.smembers(f"{self.prefix}:live:routers")
        routers = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
        async with self._client.pipeline(transaction=False) as pipe:
            for router in routers:
                pipe.hgetall(f"{self.prefix}:live:{router}")
            hashes = await pipe.execute()
        return {router: LiveTally.from_fields(fields) for router, fields in zip(routers, hashes, strict=True)}


def _observe(
    tally: LiveTally, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
) -> None:
    try:
        tally.observe(candidates, chosen, explored)
    except ValueError as exc:  # a bug of the explorer: counted out, never a failed request
        logger.error("live AIQ: router %s: an explored request was not counted (%s)", router, exc)
