"""The gateway's traffic minute by minute, for the dashboard's charts (``GET /v1/stats``' ``"timeline"``).

A :class:`RequestTimeline` is one more usage log (``routeyard.gateway.usage.UsageLog``): each
:class:`~routeyard.gateway.usage.RouteRecord` is added to the bucket of the minute of its ``time`` as
counters (:func:`minute_counters`): requests and $ per backend, requests and errors (status ≥ 400, which
includes every upstream failure), requests per router → backend, and the answered requests' latency in a
fixed log-spaced histogram (:data:`LATENCY_EDGES_MS`), so p50 and p99 per minute need no list of
latencies (each is the geometric middle of its bin: within ±:data:`LATENCY_RELATIVE_ERROR`).
Only the last ``keep_minutes`` minutes are kept, so memory is bounded by minutes × (backends + router
→ backend pairs + latency bins). :meth:`RequestTimeline.view` gives the last ``window_minutes`` as
JSON-ready series.

- :class:`RequestTimeline`: this process's minutes (no ``redis_url``).
- :class:`RedisRequestTimeline`: the fleet's. Records gather in a local *delta*; a background task
  (:meth:`~RedisRequestTimeline.start`) adds it every ``interval_seconds`` to the hashes
  ``<prefix>:timeline:<minute>`` (``HINCRBYFLOAT`` in one ``MULTI``, each hash expiring after
  :data:`REDIS_TTL_SECONDS`) and reads the window's hashes back, never on a request's path. The view is
  the fleet as last read plus this replica's delta not yet sent, so replicas agree once they have
  exchanged. While Redis fails the delta is kept (bounded like any timeline), the failure counted in
  :attr:`~RedisRequestTimeline.outages` and logged once until Redis answers again. A ``MULTI`` whose
  reply is lost after Redis applied it is resent: that second counts twice (a chart, not a ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.gateway.outage_log import OutageLog
from routeyard.gateway.usage import DIRECT_ROUTER, ExplorationRecord, RouteRecord

NO_BACKEND = "no backend"
"""The backend shown for a request no backend answered (refused, or every call failed)."""

_LATENCY_GROWTH = 1.1
LATENCY_EDGES_MS = tuple(_LATENCY_GROWTH**i for i in range(150))
"""Lower edges of the latency bins: 1 ms up to ≈ 1.4 million ms (a bin below 1 ms, the last one open)."""
LATENCY_RELATIVE_ERROR = math.sqrt(_LATENCY_GROWTH) - 1.0
REDIS_TTL_SECONDS = 2 * 3600

Counters = defaultdict[str, float]  # one minute: counter name (see minute_counters) -> count or $


def _counters(items: Mapping[str, float] | None = None) -> Counters:
    return defaultdict(float, items or {})


def _add(into: dict[int, Counters], minute: int, counters: Mapping[str, float]) -> None:
    bucket = into.setdefault(minute, _counters())
    for name, value in counters.items():
        bucket[name] += value


def _field(*parts: str) -> str:
    return json.dumps(parts, ensure_ascii=False)


def latency_bin(milliseconds: float) -> int:
    """The histogram bin of ``milliseconds`` (0: below 1 ms)."""
    if milliseconds < 1.0:
        return 0
    return min(int(math.log(milliseconds) / math.log(_LATENCY_GROWTH)), len(LATENCY_EDGES_MS) - 1)


def minute_counters(record: RouteRecord) -> Counters:
    """What ``record`` adds to its minute's counters, by name (a JSON list: ``["requests", backend]``,
    ``["spend", backend]``, ``["total"]``, ``["errors"]``, ``["route", router, backend]``,
    ``["latency", bin]``)."""
    backend = record.backend or NO_BACKEND
    counters = _counters({_field("total"): 1, _field("requests", backend): 1})
    counters[_field("spend", backend)] += record.cost_usd
    counters[_field("route", record.router or DIRECT_ROUTER, backend)] += 1
    if record.status >= 400:
        counters[_field("errors")] += 1
    else:
        counters[_field("latency", str(latency_bin(record.total_seconds * 1000.0)))] += 1
    return counters


def percentile_ms(histogram: Mapping[int, float], q: float) -> float | None:
    """The ``q``-quantile (0–1) of a latency histogram (bin -> count), as its bin's geometric middle;
    None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank, seen = q * total, 0.0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            break
    if index == 0:
        return 0.5
    return LATENCY_EDGES_MS[index] * math.sqrt(_LATENCY_GROWTH)


class RequestTimeline:
    """This process's last ``keep_minutes`` minutes of traffic (see the module docstring). ``clock``
    gives the current time (epoch seconds); records older than the kept minutes are not counted."""

    def __init__(
        self, *, keep_minutes: int = 90, window_minutes: int = 60, clock: Callable[[], float] = time.time
    ) -> None:
        if window_minutes > keep_minutes:
            raise ValueError("window_minutes must be at most keep_minutes")
        self.keep_minutes = keep_minutes
        self.window_minutes = window_minutes
        self.clock = clock
        self.minutes: dict[int, Counters] = {}
        self._pruned_below = 0
        self._lock = threading.Lock()

    def record(self, record: RouteRecord) -> None:
        minute = int(record.time // 60)
        with self._lock:
            oldest = self._oldest_kept()
            if minute >= oldest:
                _add(self.minutes, minute, minute_counters(record))
            if oldest != self._pruned_below:  # once a minute, not per request
                self._pruned_below = oldest
                for old in [m for m in self.minutes if m < oldest]:
                    del self.minutes[old]

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        """Feedback is not charted."""

    def explored(self, record: ExplorationRecord) -> None:
        """Explored answers are summed by the live AIQ, not here."""

    def view(self) -> dict[str, Any]:
        """The last ``window_minutes`` minutes up to the current one (see :func:`series`)."""
        return series(self._counters(), self._window())

    def _counters(self) -> dict[int, Counters]:
        with self._lock:
            return {minute: _counters(counters) for minute, counters in self.minutes.items()}

    def _window(self) -> list[int]:
        now = int(self.clock() // 60)
        return list(range(now - self.window_minutes + 1, now + 1))

    def _oldest_kept(self) -> int:
        return int(self.clock() // 60) - self.keep_minutes + 1


class RedisRequestTimeline(RequestTimeline):
    """Every replica's minutes, in Redis (see the module docstring); :attr:`minutes` is the delta not yet
    sent."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "routeyard",
        interval_seconds: float = 1.0,
        keep_minutes: int = 90,
        window_minutes: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(keep_minutes=keep_minutes, window_minutes=window_minutes, clock=clock)
        self.prefix = prefix
        self.interval_seconds = interval_seconds
        self.outages = OutageLog("request timeline", "minutes kept to send later")
        self._client = redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, retry=Retry(NoBackoff(), 0)
        )
        self._fleet: dict[int, Counters] = {}
        self._task: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        merged = {minute: _counters(counters) for minute, counters in self._fleet.items()}
        for minute, counters in self._counters().items():
            _add(merged, minute, counters)
        return series(merged, self._window())

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
        """Add the delta to Redis and read the window back; never raises (a failure is counted, and the
        delta kept to send again)."""
        with self._lock:
            delta, self.minutes = self.minutes, {}
        try:
            if delta:
                await self._send(delta)
        except (redis.RedisError, OSError) as exc:
            with self._lock:  # back in front of what gathered meanwhile, still bounded by keep_minutes
                oldest = self._oldest_kept()
                for minute, counters in delta.items():
                    if minute >= oldest:
                        _add(self.minutes, minute, counters)
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

    def _key(self, minute: int) -> str:
        return f"{self.prefix}:timeline:{minute}"

    async def _send(self, delta: dict[int, Counters]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            for minute, counters in delta.items():
                for name, value in counters.items():
                    pipe.hincrbyfloat(self._key(minute), name, value)
                pipe.expire(self._key(minute), REDIS_TTL_SECONDS)
            await pipe.execute()

    async def _read(self) -> dict[int, Counters]:
        window = self._window()
        async with self._client.pipeline(transaction=False) as pipe:
            for minute in window:
                pipe.hgetall(self._key(minute))
            hashes = await pipe.execute()
        return {
            minute: _counters({_text(name): float(value) for name, value in fields.items()})
            for minute, fields in zip(window, hashes, strict=True)
            if fields
        }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def series(minutes: Mapping[int, Mapping[str, float]], window: list[int]) -> dict[str, Any]:
    """The charts' series over ``window`` (minute numbers) from each minute's counters: ``minutes``
    (each minute's start, epoch seconds), ``requests`` and ``errors`` (totals), ``error_rate`` (None
    without requests), ``requests_by_backend`` and ``spend_usd_by_backend`` ({backend: values}),
    ``latency_ms`` ({"p50": …, "p99": …}, None without answered requests) and ``routing``
    ({router: {backend: requests}}); every list holds one value per minute of ``window``."""
    empty = _counters()
    columns = [minutes.get(minute, empty) for minute in window]
    parsed = [[(json.loads(name), value) for name, value in column.items()] for column in columns]
    names = sorted({tuple(parts) for column in parsed for parts, _ in column})

    def values(*parts: str) -> list[float]:
        name = _field(*parts)
        return [column.get(name, 0.0) for column in columns]

    requests = [int(v) for v in values("total")]
    errors = [int(v) for v in values("errors")]
    backends = [n[1] for n in names if n[0] == "requests"]
    routing: dict[str, dict[str, list[int]]] = {}
    for name in names:
        if name[0] == "route":
            routing.setdefault(name[1], {})[name[2]] = [int(v) for v in values(*name)]
    histograms = [
        {int(parts[1]): value for parts, value in column if parts[0] == "latency"} for column in parsed
    ]
    return {
        "minutes": [minute * 60 for minute in window],
        "requests": requests,
        "errors": errors,
        "error_rate": [e / n if n else None for e, n in zip(errors, requests, strict=True)],
        "requests_by_backend": {b: [int(v) for v in values("requests", b)] for b in backends},
        "spend_usd_by_backend": {b: values("spend", b) for b in backends},
        "latency_ms": {
            "p50": [_rounded(percentile_ms(h, 0.50)) for h in histograms],
            "p99": [_rounded(percentile_ms(h, 0.99)) for h in histograms],
        },
        "routing": routing,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
