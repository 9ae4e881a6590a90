"""Group commit: concurrent store operations sent together, one round trip per group.

A key store's reserve and settle are each one atomic step, but a round trip to Redis costs ≈ 90 µs of
the gateway's CPU (redis-py) and one to SQLite a thread hop, so one per operation cost a quarter of a
passthrough request's throughput. :class:`GroupCommit` sends an operation at once when nothing is in
flight (a lone request waits for nobody); operations that arrive while a group is in flight wait for it
and then go together as the next group, in arrival order. The store applies a group in one atomic step
(one Lua script, one transaction) that applies its operations one after the other, so each operation
sees exactly the state the ones before it left, as if sent alone.

An operation nobody waits on (a settlement: ``urgent=False``) starts no round trip of its own: it rides
with the next group, or goes after :data:`DEFERRED_SECONDS` if no other operation comes. Under load
a request then costs one round trip (its reserve, carrying earlier requests' settlements), not two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

DEFERRED_SECONDS = 0.02
Op = TypeVar("Op")
Result = TypeVar("Result")


class GroupCommit(Generic[Op, Result]):
    """Applies operations through ``apply(group) -> results`` (one result per operation, in order),
    grouping those that arrive while a group is in flight (see the module docstring). At most
    ``max_group`` operations go in one group."""

    def __init__(self, apply: Callable[[list[Op]], Awaitable[list[Result]]], *, max_group: int = 256) -> None:
        self._apply = apply
        self._max_group = max_group
        self._waiting: list[tuple[Op, asyncio.Future[Result]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, op: Op, *, urgent: bool = True) -> Result:
        """``op``'s result, once its group has been applied; raises what applying the group raised.
        Not ``urgent``: it waits for the next group, at most :data:`DEFERRED_SECONDS`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        done.add_done_callback(_retrieved)  # a caller that gave up leaves no "never retrieved" warning
        self._waiting.append((op, done))
        if urgent:
            self._start_sending()
        else:
            loop.call_later(DEFERRED_SECONDS, self._start_sending)
        return await asyncio.shield(done)  # a caller that gives up does not cancel the others' group

    def _start_sending(self) -> None:
        """Start sending what waits, unless a sender is already at it (it will take it)."""
        if self._waiting and (self._sender is None or self._sender.done()):
            self._sender = asyncio.get_running_loop().create_task(self._send_groups())

    async def close(self) -> None:
        """Wait for the groups still being sent."""
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)

    async def _send_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
            try:
                results = await self._apply([op for op, _ in group])
                if len(results) != len(group):
                    raise RuntimeError(f"{len(results)} results for a group of {len(group)} operations")
            except Exception as exc:
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(group, results, strict=True):
                if not done.done():
                    done.set_result(result)


def _retrieved(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()
