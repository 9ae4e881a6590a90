"""A gateway's HTTP connection pools: one per backend, so that a hung upstream holds only its own.

A backend that accepts connections and never answers keeps every connection it is sent until the call's
deadline. Had the backends one pool between them, a few hundred such calls would take every connection
and a healthy backend's requests would queue behind them. Each HTTP backend therefore takes a pool of
its own (:meth:`ConnectionPools.new_pool`) with its own connection limit; a call over the limit waits
for a connection of that backend only (its wait counts towards the call's deadline).

Each pool is httpx's transport API over aiohttp's connection pool (``httpx-aiohttp``): httpcore's own
pool spends twice the CPU per request at 16 concurrent connections, which halved the gateway's
throughput (benchmarks/RESULTS.md). A pool opens its aiohttp session at its first request, on the
event loop that makes it, so pools may be made before the loop runs (the app builds its backends in a
worker thread); :meth:`ConnectionPools.aclose` closes every one of them.
"""

from __future__ import annotations

from types import TracebackType

import httpx
from httpx_aiohttp import AiohttpTransport

DEFAULT_MAX_CONNECTIONS = 100
"""A backend's connection limit unless configured (``max_connections``)."""


class ConnectionPools:
    """The connection pools of one gateway's backends; close them with ``async with`` or :meth:`aclose`."""

    def __init__(self) -> None:
        self._pools: list[httpx.AsyncBaseTransport] = []

    def new_pool(self, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> httpx.AsyncBaseTransport:
        """A new pool of at most ``max_connections`` (≥ 1) open connections, closed with the others.

        A request over the limit waits for a connection of this pool (at most the request's ``pool``
        timeout); idle connections are kept alive for 5 s (httpx's default expiry)."""
        if max_connections < 1:
            raise ValueError("a connection pool needs at least one connection")
        pool = AiohttpTransport(limits=httpx.Limits(max_connections=max_connections))
        self._pools.append(pool)
        return pool

    async def aclose(self) -> None:
        """Close every pool made here (their connections, open or idle)."""
        pools, self._pools = self._pools, []
        for pool in pools:
            await pool.aclose()

    async def __aenter__(self) -> ConnectionPools:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
