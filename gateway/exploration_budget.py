"""What a router spends exploring, per UTC day: the budget ledger of ``routeyard.gateway.exploration``.

A :class:`SpendLedger` says what a router spent exploring on a day and adds to it: in memory
(:class:`InMemorySpendLedger`, one process) or in Redis (:class:`RedisSpendLedger`,
``INCRBYFLOAT <prefix>:exploration_spend:<router>:<day>``, so every replica spends from one budget).
"""

from __future__ import annotations

import time
from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


class SpendLedger(Protocol):
    """Each router's exploring spend per UTC day."""

    async def spent(self, router: str, day: str) -> float:
        """$ spent exploring by ``router`` on ``day``; raises on a store failure."""
        ...

    async def add(self, router: str, day: str, cost_usd: float) -> None:
        """Add ``cost_usd`` to ``router``'s spend on ``day``; raises on a store failure."""
        ...

    async def close(self) -> None: ...


class InMemorySpendLedger:
    """One process's spend, today's and yesterday's days kept (older ones dropped as days pass)."""

    def __init__(self) -> None:
        self._spend: dict[tuple[str, str], float] = {}

    async def spent(self, router: str, day: str) -> float:
        return self._spend.get((router, day), 0.0)

    async def add(self, router: str, day: str, cost_usd: float) -> None:
        for key in [k for k in self._spend if k[1] < day]:
            del self._spend[key]
        self._spend[(router, day)] = self._spend.get((router, day), 0.0) + cost_usd

    async def close(self) -> None:
        return None


class RedisSpendLedger:
    """Every replica's spend: ``<prefix>:exploration_spend:<router>:<day>``, a float added to with
    ``INCRBYFLOAT`` and expiring two days after its last addition."""

    TTL_SECONDS = 2 * 86_400

    def __init__(self, url: str, *, prefix: str = "routeyard") -> None:
        self.prefix = prefix
        self._client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )

    def key(self, router: str, day: str) -> str:
        return f"{self.prefix}:exploration_spend:{router}:{day}"

    async def spent(self, router: str, day: str) -> float:
        value = await self._client.get(self.key(router, day))
        return float(value) if value is not None else 0.0

    async def add(self, router: str, day: str, cost_usd: float) -> None:
        key = self.key(router, day)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incrbyfloat(key, cost_usd)
            pipe.expire(key, self.TTL_SECONDS)
            await pipe.execute()

    async def close(self) -> None:
        await self._client.aclose()


def utc_day(now: float) -> str:
    """The UTC day of the Unix time ``now``, as ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(now))
