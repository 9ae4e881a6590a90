"""The Redis usage log: every request's record in a bounded stream, and spend counters, never in the way.

:meth:`RedisUsageLog.record` and :meth:`RedisUsageLog.feedback` only append to a bounded in-process
buffer and return. A background task (:meth:`start`; :meth:`close` flushes what it can) wakes when
entries arrive, lets them gather for ``flush_interval`` seconds (unless a full ``batch`` is already
waiting), takes up to ``batch`` entries out of the buffer as one *batch* and writes it.

What a batch writes:

- each record: ``XADD <prefix>:requests MAXLEN ~ <max_stream_length>`` with flat string fields
  (attempts as JSON; the prompt text only when it was kept, see ``store_prompts``);
- each explored answer (:class:`~routeyard.gateway.usage.ExplorationRecord`): ``XADD <prefix>:explored
  MAXLEN ~ <max_stream_length>`` with its flat fields, as a record;
- each feedback: ``XADD <prefix>:feedbacks MAXLEN ~ <max_stream_length>`` with ``request_id``,
  ``quality``, ``time`` and ``rater`` (the id of the key that gave it, ``admin``, or empty) (a capped
  stream: feedback cannot grow without bound; the last one given for
  a request wins, see ``routeyard.gateway.usage_export``);
- counters, one hash each, field = name, summed over the batch first:
  ``<prefix>:spend_usd:{backend,router,client,day}`` ($, float) and
  ``<prefix>:requests:{backend,router,client,day}`` (count). A request counts once for the backend
  that answered it, but every attempt's own $ goes to *that attempt's* backend (a cascade that tried
  ``cheap`` and then ``dear`` adds each call's cost to each); router, client and day get the request's
  total $ (the sum of its attempts) and count. An explored answer adds what exploring spent and no
  request: the other candidate's answer $ to its backend, and that plus both gradings' $ to its router
  and day (the client's answer was counted with its request).

Write protocol — each batch is applied exactly once, in one round trip:

- A batch gets a random id when it is taken from the buffer; it is retried as it is, with the same id,
  until Redis answers (while Redis is down the writer backs off, up to 2 s, and the gateway keeps
  serving). redis-py's own retries are off: the writer owns retrying.
- The batch is one ``EVALSHA`` of a Lua script (atomic in Redis). The script first checks that every
  key has the right type (stream, hash, or absent) and fails with ``WRONGTYPE`` before writing
  anything; then applies the batch only if ``SET <prefix>:batch:<id> 1 NX EX <marker_ttl>`` succeeds.
  A retry of a batch Redis applied but whose answer was lost (a cut connection, a killed server that
  had persisted it) finds the marker and applies nothing (counted in :attr:`replayed`). The next
  batch's script deletes the previous batch's marker, since its answer arrived; ``marker_ttl`` (1 day)
  only bounds markers left by a stopped process.
- With append-only persistence and ``appendfsync always`` (Redis persists a script's effects before
  it answers) this holds across a crash of Redis too: either the batch and its marker were persisted
  or neither was. With weaker persistence a crash loses the writes Redis had not yet persisted.
- The keys must live on one Redis (on a cluster, give the prefix a hash tag: ``{routeyard}``).

Losses are counted in :attr:`dropped`, never silent, and logged with the error's type only (never a
record's contents): an entry the buffer (``buffer_size``, the batch in flight included) had no room
for; a record that cannot be encoded (a non-finite cost); a batch Redis refused for good (a
``ResponseError``, e.g. ``WRONGTYPE``, or any unexpected exception: that batch is dropped and the
writer goes on, it never dies); and whatever is still unwritten when :meth:`close` gives up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from routeyard.gateway.usage import ExplorationRecord, RouteRecord

logger = logging.getLogger("routeyard.usage")
_FIRST_BACKOFF_SECONDS = 0.05
_MAX_BACKOFF_SECONDS = 2.0
_COUNTED_BY = ("backend", "router", "client", "day")  # counter index 1..4 in the script
# Redis is away (or failing over) but may come back: keep the batch and retry it with the same id.
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, TryAgainError, OSError)

# KEYS: 1 this batch's marker, 2 requests stream, 3 feedbacks stream, 4..7 spend_usd:{backend,router,
# client,day}, 8..11 requests:{…}, 12 the previous batch's marker, 13 explored stream.
# ARGV: 1 marker ttl (s), 2 stream max length, 3 records R, 4 feedbacks F, 5 counter rows C,
# 6 "1" to delete the previous marker, 7 explored answers E; then R records (field count n, then n
# fields and values), F feedbacks (request id, quality, time, rater), E explored answers (as records),
# C counter rows (counter 1..4, name, $, requests).
_SCRIPT = """
local function wrong_type(first, last, wanted)
  for i = first, last do
    local found = redis.call('TYPE', KEYS[i])['ok']
    if found ~= 'none' and found ~= wanted then
      return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. found .. ', not a ' .. wanted)
    end
  end
  return nil
end
local refused = wrong_type(2, 3, 'stream') or wrong_type(13, 13, 'stream') or wrong_type(4, 11, 'hash')
if refused then return refused end
if ARGV[6] == '1' then redis.call('DEL', KEYS[12]) end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local at = 8
for _ = 1, tonumber(ARGV[3]) do
  local n = tonumber(ARGV[at])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, at + 1, at + n))
  at = at + n + 1
end
for _ = 1, tonumber(ARGV[4]) do
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
    'request_id', ARGV[at], 'quality', ARGV[at + 1], 'time', ARGV[at + 2], 'rater', ARGV[at + 3])
  at = at + 4
end
for _ = 1, tonumber(ARGV[7]) do
  local n = tonumber(ARGV[at])
  redis.call('XADD', KEYS[13], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, at + 1, at + n))
  at = at + n + 1
end
for _ = 1, tonumber(ARGV[5]) do
  local by = tonumber(ARGV[at])
  redis.call('HINCRBYFLOAT', KEYS[3 + by], ARGV[at + 1], ARGV[at + 2])
  if ARGV[at + 3] ~= '0' then redis.call('HINCRBY', KEYS[7 + by], ARGV[at + 1], ARGV[at + 3]) end
  at = at + 4
end
return 1
"""

Entry = (
    RouteRecord | ExplorationRecord | tuple[str, float, float, str]
)  # a record, an explored answer, or a feedback (request id, quality, time, rater)


@dataclass(frozen=True)
class _Batch:
    """Entries taken from the buffer, encoded once; retried as they are under the same ``marker``."""

    marker: str
    previous: str | None  # the marker of the batch applied before, for the script to delete
    size: int  # entries in it
    args: list[bytes | str | int]


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
        marker_ttl: int = 86_400,
    ) -> None:
        self.prefix = prefix
        self.max_stream_length = max_stream_length
        self.buffer_size = buffer_size
        self.batch = batch
        self.flush_interval = flush_interval
        self.marker_ttl = marker_ttl
        self.dropped = 0  # entries lost: no room, not encodable, refused by Redis, unwritten at close
        self.written = 0  # entries written to Redis
        self.replayed = 0  # batches Redis had already applied when they were retried (written once)
        self._client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        self._script: Any = self._client.register_script(_SCRIPT)
        self._buffer: collections.deque[Entry] = collections.deque()
        self._in_flight: _Batch | None = None
        self._applied_marker: str | None = None  # the last applied batch's marker, deleted by the next
        self._pending = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Entries waiting to be written (the batch being written included)."""
        return len(self._buffer) + (self._in_flight.size if self._in_flight else 0)

    def record(self, record: RouteRecord) -> None:
        self._append(record)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        self._append((request_id, quality, time.time(), rater or ""))

    def explored(self, record: ExplorationRecord) -> None:
        self._append(record)

    async def start(self) -> None:
        """Start the background writer (on the running event loop)."""
        self._pending = asyncio.Event()
        if self._buffer:
            self._pending.set()
        self._writer = asyncio.create_task(self._write_forever())

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is buffered (for at most ``timeout`` s), stop the writer, close the connection.

        What is still unwritten then (Redis down) is counted in :attr:`dropped` and logged as a warning
        (a batch Redis had not answered yet counts too, though Redis may have applied it).
        """
        deadline = time.monotonic() + timeout
        while self.buffered and time.monotonic() < deadline and self._writer is not None:
            await asyncio.sleep(0.02)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        abandoned = self.buffered
        if abandoned:
            self.dropped += abandoned
            logger.warning("usage log: closed with %d entries unwritten (counted as dropped)", abandoned)
        self._buffer.clear()
        self._in_flight = None
        await self._client.aclose()

    def _append(self, entry: Entry) -> None:
        if self.buffered >= self.buffer_size:
            self.dropped += 1
            return
        self._buffer.append(entry)
        self._pending.set()

    async def _write_forever(self) -> None:
        backoff = _FIRST_BACKOFF_SECONDS
        while True:
            if self._in_flight is None:
                if not self._buffer:
                    self._pending.clear()
                    await self._pending.wait()
                if len(self._buffer) < self.batch:
                    await asyncio.sleep(self.flush_interval)  # gather a batch: one round trip for many
                taken = min(self.batch, len(self._buffer))
                try:
                    self._in_flight = self._encode(list(itertools.islice(self._buffer, taken)))
                except Exception as exc:  # a bug: it costs this batch, never the writer
                    self._drop(taken, exc)
                # popped only now: `buffered`, read from other threads too, never dips to 0 meanwhile
                for _ in range(taken):
                    self._buffer.popleft()
            batch = self._in_flight
            if batch is None or batch.size == 0:  # nothing left of it to write (dropped and counted)
                self._in_flight = None
                continue
            try:
                applied = await self._script(keys=self._keys(batch), args=batch.args)
            except _TRANSIENT as exc:
                logger.warning(
                    "usage log: Redis unavailable (%s); %d buffered", type(exc).__name__, self.buffered
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                continue
            except Exception as exc:  # refused for good (ResponseError) or a bug: drop it, keep going
                self._drop(batch.size, exc)
            else:
                self.written += batch.size
                if applied == 0:
                    self.replayed += 1
                self._applied_marker = batch.marker
            self._in_flight = None
            backoff = _FIRST_BACKOFF_SECONDS

    def _drop(self, size: int, exc: Exception) -> None:
        self.dropped += size
        logger.error(
            "usage log: dropped a batch of %d entries (%s%s)", size, type(exc).__name__, _error_code(exc)
        )

    def _encode(self, entries: list[Entry]) -> _Batch:
        """``entries`` as one batch: the script's ARGV (a record that cannot be encoded is dropped)."""
        records: list[bytes | str | int] = []
        feedbacks: list[bytes | str | int] = []
        explored: list[bytes | str | int] = []
        counters: dict[tuple[int, str], list[float]] = {}
        n_records = n_feedbacks = n_explored = 0
        for entry in entries:
            if isinstance(entry, tuple):
                request_id, quality, at, rater = entry
                feedbacks += [request_id, repr(quality), repr(at), rater]
                n_feedbacks += 1
                continue
            try:
                fields = encoded_fields(entry)
                contributions = counter_contributions(entry)
            except Exception as exc:  # one bad record must not cost the batch
                self.dropped += 1
                logger.error("usage log: dropped a record that cannot be encoded (%s)", type(exc).__name__)
                continue
            if isinstance(entry, RouteRecord):
                records += [len(fields), *fields]
                n_records += 1
            else:
                explored += [len(fields), *fields]
                n_explored += 1
            for by, name, dollars, requests in contributions:
                total = counters.setdefault((by, name), [0.0, 0])
                total[0] += dollars
                total[1] += requests
        rows: list[bytes | str | int] = []
        for (by, name), (spend, count) in counters.items():
            rows += [by, name.encode("utf-8", "replace"), repr(spend), int(count)]
        previous = self._applied_marker
        header: list[bytes | str | int] = [self.marker_ttl, self.max_stream_length, n_records, n_feedbacks]
        header += [len(counters), "0" if previous is None else "1", n_explored]
        marker = f"{self.prefix}:batch:{uuid.uuid4().hex}"
        args = header + records + feedbacks + explored + rows
        return _Batch(marker, previous, n_records + n_feedbacks + n_explored, args)

    def _keys(self, batch: _Batch) -> list[str]:
        p = self.prefix
        counters = [f"{p}:{kind}:{by}" for kind in ("spend_usd", "requests") for by in _COUNTED_BY]
        previous = batch.previous or batch.marker  # deleted only when there is one (ARGV[6])
        return [batch.marker, f"{p}:requests", f"{p}:feedbacks", *counters, previous, f"{p}:explored"]


def counter_contributions(record: RouteRecord | ExplorationRecord) -> list[tuple[int, str, float, int]]:
    """What ``record`` adds to the counters: (counter 1..4 of backend, router, client, day; name; $;
    requests). Each attempt's $ goes to its own backend, the request counts for the backend that
    answered; router, client and day get the request's total. An explored answer: see
    :func:`exploration_contributions`. Raises ValueError for a non-finite $."""
    if isinstance(record, ExplorationRecord):
        return exploration_contributions(record)
    costs = [record.cost_usd, *(a.cost_usd for a in record.attempts)]
    if not all(math.isfinite(c) for c in costs):
        raise ValueError("non-finite cost")
    rows: list[tuple[int, str, float, int]] = []
    if record.backend is not None:
        own = record.cost_usd if not record.attempts else 0.0  # no attempts noted: the total is its own
        rows.append((1, record.backend, own, 1))
    rows += [(1, a.backend, a.cost_usd, 0) for a in record.attempts if a.cost_usd != 0.0]
    day = time.strftime("%Y-%m-%d", time.gmtime(record.time))
    for by, name in ((2, record.router), (3, record.client), (4, day)):
        if name is not None:
            rows.append((by, name, record.cost_usd, 1))
    return rows


def exploration_contributions(record: ExplorationRecord) -> list[tuple[int, str, float, int]]:
    """What exploring spent for ``record``, counting no request: the other candidate's answer $ to its
    backend; that and the grading's $ to the router and the day (the client's own answer was counted
    with its request, so only its grading is added). Raises ValueError for a non-finite $."""
    if not (math.isfinite(record.cost_usd) and math.isfinite(record.grading_cost_usd)):
        raise ValueError("non-finite cost")
    answer = 0.0 if record.chosen else record.cost_usd
    spent = answer + record.grading_cost_usd
    day = time.strftime("%Y-%m-%d", time.gmtime(record.time))
    rows = [(1, record.backend, answer, 0)] if answer else []
    return [*rows, (2, record.router, spent, 0), (4, day, spent, 0)] if spent else rows


def encoded_fields(record: RouteRecord | ExplorationRecord) -> list[bytes]:
    """:func:`stream_fields` flattened to name, value, … as UTF-8 (text that cannot be, such as a lone
    surrogate, is replaced rather than failing the batch)."""
    flat: list[bytes] = []
    for name, value in stream_fields(record).items():
        flat += [name.encode(), value.encode("utf-8", "replace")]
    return flat


def stream_fields(record: RouteRecord | ExplorationRecord) -> dict[str, str]:
    """The record as flat string fields for XADD (absent values left out; tuples as JSON)."""
    fields: dict[str, str] = {}
    for name in (f.name for f in dataclass_fields(record)):
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


def _error_code(exc: Exception) -> str:
    """``: WRONGTYPE`` for a Redis error reply (its code names the kind of error, never data), else ''."""
    if not isinstance(exc, ResponseError):
        return ""
    code = str(exc).split(" ", 1)[0]
    return f": {code}" if code.isalpha() and code.isupper() else ""
