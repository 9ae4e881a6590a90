"""The Redis usage log: every request's record in a bounded stream, and spend counters, never in the way.

:meth:`RedisUsageLog.record` and :meth:`RedisUsageLog.feedback` only append to a bounded in-process
buffer and return. A background task (:meth:`start`; :meth:`close` flushes what is left) wakes when
entries arrive, lets them gather for ``flush_interval`` seconds (unless a full ``batch`` is already
waiting), and writes up to ``batch`` entries in one pipeline:

- each record: ``XADD <prefix>:requests MAXLEN ~ <max_stream_length>`` with flat string fields
  (attempts as JSON; the prompt text only when it was kept, see ``store_prompts``);
- counters, one hash each, field = name: ``<prefix>:spend_usd:{backend,router,client,day}`` (float $)
  and ``<prefix>:requests:{backend,router,client,day}`` (count), summed over the batch first;
- each feedback: ``HSET <prefix>:feedback <request_id> <quality>``.

An entry leaves the buffer only once its pipeline succeeded. While Redis is down the writer retries with
backoff (up to 2 s) and the gateway keeps serving; the buffer keeps up to ``buffer_size`` entries and
counts each one it had to refuse in :attr:`dropped`. When Redis is back the buffer drains.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from dataclasses import fields as dataclass_fields
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from gateway.usage import RouteRecord

logger = logging.getLogger("routeyard.usage")
_MAX_BACKOFF_SECONDS = 2.0
_COUNTED_BY = ("backend", "router", "client", "day")
_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(RouteRecord))


class RedisUsageLog:
    """See the module docstring. ``url`` is a Redis URL (``redis://host:port/db``)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "routeyard",
        max_stream_length: int = 1_000_000,
        buffer_size: int = 100_000,
        batch: int = 500,
        flush_interval: float = 0.05,
    ) -> None:
        self.prefix = prefix
        self.max_stream_length = max_stream_length
        self.buffer_size = buffer_size
        self.batch = batch
        self.flush_interval = flush_interval
        self.dropped = 0  # entries refused because the buffer was full
        self.written = 0  # entries written to Redis
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._buffer: collections.deque[RouteRecord | tuple[str, float]] = collections.deque()
        self._pending = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Entries waiting to be written."""
        return len(self._buffer)

    def record(self, record: RouteRecord) -> None:
        self._append(record)

    def feedback(self, request_id: str, quality: float) -> None:
        self._append((request_id, quality))

    async def start(self) -> None:
        """Start the background writer (on the running event loop)."""
        self._pending = asyncio.Event()
        if self._buffer:
            self._pending.set()
        self._writer = asyncio.create_task(self._write_forever())

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is buffered (for at most ``timeout`` s), stop the writer, close the connection."""
        deadline = time.monotonic() + timeout
        while self._buffer and time.monotonic() < deadline and self._writer is not None:
            await asyncio.sleep(0.02)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._client.aclose()

    def _append(self, entry: RouteRecord | tuple[str, float]) -> None:
        if len(self._buffer) >= self.buffer_size:
            self.dropped += 1
            return
        self._buffer.append(entry)
        self._pending.set()

    async def _write_forever(self) -> None:
        backoff = 0.05
        while True:
            if not self._buffer:
                self._pending.clear()
                await self._pending.wait()
            if len(self._buffer) < self.batch:
                await asyncio.sleep(self.flush_interval)  # gather a batch: one round trip for many records
            entries = [self._buffer[i] for i in range(min(self.batch, len(self._buffer)))]
            try:
                await self._write(entries)
            except (RedisError, OSError) as exc:
                logger.warning(
                    "usage log: Redis unavailable (%s); %d buffered", type(exc).__name__, self.buffered
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            backoff = 0.05
            for _ in entries:
                self._buffer.popleft()
            self.written += len(entries)

    async def _write(self, entries: list[RouteRecord | tuple[str, float]]) -> None:
        pipeline: Any = self._client.pipeline(transaction=False)
        spend: collections.defaultdict[tuple[str, str], float] = collections.defaultdict(float)
        count: collections.Counter[tuple[str, str]] = collections.Counter()
        for entry in entries:
            if not isinstance(entry, RouteRecord):
                pipeline.hset(f"{self.prefix}:feedback", entry[0], str(entry[1]))
                continue
            pipeline.xadd(
                f"{self.prefix}:requests",
                stream_fields(entry),
                maxlen=self.max_stream_length,
                approximate=True,
            )
            for key in _counter_keys(entry):
                spend[key] += entry.cost_usd
                count[key] += 1
        for (by, name), total in spend.items():  # one increment per name and batch, not per record
            pipeline.hincrbyfloat(f"{self.prefix}:spend_usd:{by}", name, total)
            pipeline.hincrby(f"{self.prefix}:requests:{by}", name, count[(by, name)])
        await pipeline.execute()


def _counter_keys(record: RouteRecord) -> list[tuple[str, str]]:
    """The (counted by, name) pairs a record adds to."""
    names = {
        "backend": record.backend,
        "router": record.router,
        "client": record.client,
        "day": time.strftime("%Y-%m-%d", time.gmtime(record.time)),
    }
    return [(by, name) for by in _COUNTED_BY if (name := names[by]) is not None]


def stream_fields(record: RouteRecord) -> dict[str, str]:
    """The record as flat string fields for XADD (absent values left out; tuples as JSON)."""
    fields: dict[str, str] = {}
    for name in _RECORD_FIELDS:
        value = getattr(record, name)
        if value is None:
            continue
        if name == "attempts":
            fields[name] = json.dumps([a.__dict__ for a in value])
        elif isinstance(value, tuple):
            fields[name] = json.dumps(value)
        elif isinstance(value, bool):
            fields[name] = "1" if value else "0"
        else:
            fields[name] = str(value)
    return fields
