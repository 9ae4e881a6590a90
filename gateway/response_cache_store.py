"""Where the response cache keeps answers (``routeyard.gateway.response_cache`` decides which and under
what keys): by exact key, and for semantic matches by the prompt's vector within a group.

A :class:`ResponseCacheStore` stores a :class:`CachedAnswer` under a key (a hex hash made by the caller;
groups too), optionally indexed by a vector in a group, and finds it again by key (:meth:`get`) or by
the most similar vector of the group (:meth:`nearest`). Vectors are float32 ``(d,)``; the store
normalises them itself (a caller's unit vectors are left as they are; a zero or non-finite vector is
not indexed, and finds nothing). It never fails a request: a store failure makes ``get``/``nearest``
answer None and ``put`` answer False, logged once per failure burst (the exception's type only: no
key, no text), never raised. An entry is the orjson bytes of the answer (no prompt text is ever given
to the store); one whose size exceeds ``max_entry_bytes`` is not stored. Entries expire ``ttl_seconds``
after their put; beyond ``max_entries`` the oldest put is evicted first. The vector index holds only
vectors of stored entries, so at most ``max_entries`` vectors, in at most that many groups, and a
search never answers with an expired or evicted entry.

- :class:`InMemoryResponseCache`: one process's entries (no ``redis_url``), at most ``max_entries`` ×
  ``max_entry_bytes`` of memory plus the vectors; for one event loop (no locks: no method awaits).
- :class:`RedisResponseCache`: the fleet's, in Redis (``<prefix>`` is ``routeyard`` by default):

  - ``<prefix>:response_cache:entry:<key>``: the entry's bytes, ``SET … PX <ttl>``;
  - ``<prefix>:response_cache:order``: a sorted set of the stored keys, scored by
    ``<prefix>:response_cache:seq`` (a counter ``INCR``-ed by each put, never expiring), trimmed to
    ``max_entries`` (the evicted keys' entries deleted) in the same Lua script as the ``SET``, so
    eviction is oldest-first across every replica;
  - ``<prefix>:response_cache:vectors``: one stream for every group, an item ``(g: group, k: key, v:
    the unit vector's float32 bytes)`` ``XADD``-ed by the same script with ``MAXLEN = max_entries``,
    trimmed of items older than the ttl (``MINID``) and expiring a ttl after the last put.

  Each replica keeps a local index (:class:`VectorIndex`: one numpy matrix per group) of what it has
  read of the stream; :meth:`~RedisResponseCache.nearest` first reads only what is new (``XRANGE`` from
  the last id read, at most 2000 items per search so a replica starting cold catches up over a few
  searches, missing meanwhile; with Redis's ``TIME`` to drop what has expired), searches exactly, then
  ``MGET``\\ s the best few candidates above the threshold: the most similar whose entry is still
  there is the hit (a missing one — expired, evicted — is not, and is dropped from the index). The
  script derives entry keys from the order's members, so it suits one Redis (or a replicated primary),
  not Redis Cluster.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.arrays import Vectors

if TYPE_CHECKING:
    from routeyard.gateway.settings import GatewaySettings

logger = logging.getLogger("routeyard.gateway")

_FORMAT = 1  # an entry's layout: one written by another layout is a miss
_CANDIDATES = 8  # best matches fetched at once by RedisResponseCache.nearest
_ROUNDING = 1e-5  # float32 cosine rounding allowed below the threshold (an identical vector meets 1.0)
_PAGE = 1000  # stream items read per XRANGE
_PAGES_PER_SEARCH = 2  # a replica that is behind catches up over a few searches, ≤ 2 pages each
_MIN_ROWS = 16  # a group matrix's least capacity
_STORE_ERRORS = (redis.RedisError, OSError, ValueError)

# KEYS: 1 the entry, 2 the order (sorted set), 3 the put counter, 4 the vector stream.
# ARGV: 1 the entry's bytes, 2 ttl ms, 3 max entries, 4 the key, 5 the entry key prefix, 6 '1' when the
# entry is indexed ('0' otherwise), 7 its group, 8 its vector's bytes.
_PUT = """
local ttl, most = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - most
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, excess - 1)) do
    redis.call('DEL', ARGV[5] .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
redis.call('PEXPIRE', KEYS[2], ttl)
if ARGV[6] == '1' then
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - ttl
  redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[3], '*', 'g', ARGV[7], 'k', ARGV[4], 'v', ARGV[8])
  redis.call('XTRIM', KEYS[4], 'MINID', string.format('%d', math.max(oldest, 0)))
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return 1
"""


@dataclass(frozen=True)
class CachedAnswer:
    """One answer as it was bought."""

    backend: str  # the backend that gave the answer
    body: dict[str, Any]  # the completion body (JSON-able) as it was answered, without routeyard's `routing`
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float  # what it cost when it was bought (a hit costs $0)
    stored_at: float  # unix time


class ResponseCacheStore(Protocol):
    """Answers by key and by vector (see the module docstring); no method raises on a store failure."""

    async def get(self, key: str) -> CachedAnswer | None:
        """The live answer stored under ``key``, or None (none, expired, evicted, or the store failed)."""
        ...

    async def nearest(
        self, group: str, vector: Vectors, threshold: float
    ) -> tuple[CachedAnswer, float] | None:
        """The cached answer in `group` whose vector has the highest cosine similarity to `vector`, if it is
        ≥ threshold, with that similarity; None otherwise."""
        ...

    async def put(
        self, key: str, answer: CachedAnswer, *, group: str | None = None, vector: Vectors | None = None
    ) -> bool:
        """Store (False when not stored: too large, or the store failed). With group+vector, the entry can
        also be found by `nearest`."""
        ...

    async def close(self) -> None:
        """Release the store's resources; it is not used afterwards."""
        ...


def encode_answer(answer: CachedAnswer) -> bytes:
    """``answer`` as an entry's bytes (orjson); raises TypeError when its body is not JSON-able."""
    return orjson.dumps(
        [
            _FORMAT,
            answer.backend,
            answer.body,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.cost_usd,
            answer.stored_at,
        ]
    )


def decode_answer(data: bytes | str) -> CachedAnswer | None:
    """The answer in an entry's bytes; None when they are not an entry of this layout. Each call gives a
    new ``body``, so a caller may change it."""
    try:
        layout, backend, body, prompt_tokens, completion_tokens, cost_usd, stored_at = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    if layout != _FORMAT or not isinstance(body, dict):
        return None
    return CachedAnswer(backend, body, prompt_tokens, completion_tokens, cost_usd, stored_at)


def unit_vector(vector: Vectors) -> Vectors | None:
    """``vector`` as a float32 ``(d,)`` of length 1; None when it is not one finite, non-zero vector."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(array))
    if array.size == 0 or not math.isfinite(norm) or norm == 0.0:
        return None
    return array / np.float32(norm)


class _GroupMatrix:
    """One group's unit vectors: rows of a matrix that doubles and halves with its size."""

    def __init__(self, dimension: int) -> None:
        self.rows = np.zeros((_MIN_ROWS, dimension), dtype=np.float32)
        self.keys: list[str] = []
        self.row_of: dict[str, int] = {}

    def add(self, key: str, vector: Vectors) -> None:
        """Add ``key``'s vector (``key`` is not in the group)."""
        if len(self.keys) == len(self.rows):
            self._resize(2 * len(self.rows))
        self.rows[len(self.keys)] = vector
        self.row_of[key] = len(self.keys)
        self.keys.append(key)

    def remove(self, key: str) -> None:
        """Remove ``key``'s vector (the last row moves into its place)."""
        row, last = self.row_of.pop(key), len(self.keys) - 1
        if row != last:
            self.rows[row] = self.rows[last]
            self.keys[row] = self.keys[last]
            self.row_of[self.keys[row]] = row
        self.keys.pop()
        if len(self.rows) > _MIN_ROWS and len(self.keys) < len(self.rows) // 4:
            self._resize(len(self.rows) // 2)

    def best(self, vector: Vectors, threshold: float, count: int) -> list[tuple[str, float]]:
        """Up to ``count`` (key, cosine) with cosine ≥ ``threshold`` (less float32 rounding), best first."""
        if vector.shape[0] != self.rows.shape[1]:
            return []
        # einsum, not BLAS's threaded matrix-vector product: as fast alone (≈ 0.5 ms at 10k × 256), and
        # never waiting on the event loop for a BLAS thread that a busy core has descheduled.
        similarity = np.einsum("ij,j->i", self.rows[: len(self.keys)], vector)
        above = np.flatnonzero(similarity >= threshold - _ROUNDING)
        if len(above) > count:
            above = above[np.argpartition(-similarity[above], count - 1)[:count]]
        order = above[np.argsort(-similarity[above], kind="stable")]
        return [(self.keys[i], min(float(similarity[i]), 1.0)) for i in order]

    def _resize(self, capacity: int) -> None:
        rows = np.zeros((capacity, self.rows.shape[1]), dtype=np.float32)
        rows[: len(self.keys)] = self.rows[: len(self.keys)]
        self.rows = rows


class VectorIndex:
    """Unit vectors by key, in groups, remembered in the order they were added (a key added again moves
    to the newest place and takes its new group and vector)."""

    def __init__(self) -> None:
        self._groups: dict[str, _GroupMatrix] = {}
        self._added: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key -> (group, when added)

    def __len__(self) -> int:
        return len(self._added)

    def group_count(self) -> int:
        """How many groups hold a vector."""
        return len(self._groups)

    def add(self, group: str, key: str, vector: Vectors, added_at: float) -> None:
        """Index ``key``'s unit ``vector`` in ``group`` as added at ``added_at`` (any clock, one per index),
        in place of its earlier vector. A vector whose dimension differs from the group's is not added."""
        self.remove(key)
        matrix = self._groups.setdefault(group, _GroupMatrix(vector.shape[0]))
        if matrix.rows.shape[1] != vector.shape[0]:
            return
        matrix.add(key, vector)
        self._added[key] = (group, added_at)

    def remove(self, key: str) -> None:
        """Forget ``key``'s vector (nothing when it has none)."""
        found = self._added.pop(key, None)
        if found is None:
            return
        matrix = self._groups[found[0]]
        matrix.remove(key)
        if not matrix.keys:
            del self._groups[found[0]]

    def trim(self, most: int, added_before: float) -> None:
        """Forget the oldest vectors until at most ``most`` are left and none was added before
        ``added_before``."""
        while self._added:
            key, (_, added_at) = next(iter(self._added.items()))
            if len(self._added) <= most and added_at >= added_before:
                return
            self.remove(key)

    def best(self, group: str, vector: Vectors, threshold: float, count: int) -> list[tuple[str, float]]:
        """Up to ``count`` (key, cosine similarity) of ``group`` at or above ``threshold``, best first."""
        matrix = self._groups.get(group)
        return [] if matrix is None else matrix.best(vector, threshold, count)


class _FailureLog:
    """Logs Redis's failures once per burst (the exception's type only) and its recovery."""

    def __init__(self) -> None:
        self.failures = 0
        self._failing = False

    def failed(self, exc: BaseException) -> None:
        """Count a failure; log it when it starts a burst."""
        self.failures += 1
        if not self._failing:
            logger.warning("response cache: Redis failed (%s); misses until it answers", type(exc).__name__)
        self._failing = True

    def answered(self) -> None:
        """End a burst, if one was going on."""
        if self._failing:
            logger.info("response cache: Redis answers again")
        self._failing = False


def _entry_bytes(answer: CachedAnswer, max_entry_bytes: int) -> bytes | None:
    """``answer``'s entry bytes; None when they are over ``max_entry_bytes`` or not JSON-able (logged)."""
    try:
        data = encode_answer(answer)
    except TypeError as exc:  # orjson's JSONEncodeError: e.g. an integer beyond 64 bits
        logger.warning("response cache: an answer is not JSON-able (%s); not cached", type(exc).__name__)
        return None
    return data if len(data) <= max_entry_bytes else None


class InMemoryResponseCache:
    """One process's answers: at most ``max_entries`` entries of at most ``max_entry_bytes`` each, each
    for ``ttl_seconds`` (see the module docstring). Expired entries are dropped as the cache is used."""

    def __init__(self, ttl_seconds: float, max_entries: int, max_entry_bytes: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # key -> (bytes, stored at)
        self._vectors = VectorIndex()

    @property
    def index_size(self) -> tuple[int, int]:
        """The semantic index's (vectors, groups): at most ``max_entries`` of each."""
        return len(self._vectors), self._vectors.group_count()

    async def get(self, key: str) -> CachedAnswer | None:
        self._expire()
        entry = self._entries.get(key)
        return decode_answer(entry[0]) if entry is not None else None

    async def nearest(
        self, group: str, vector: Vectors, threshold: float
    ) -> tuple[CachedAnswer, float] | None:
        self._expire()
        query = unit_vector(vector)
        if query is None:
            return None
        best = self._vectors.best(group, query, threshold, 1)
        if not best:
            return None
        key, similarity = best[0]
        answer = decode_answer(self._entries[key][0])
        return (answer, similarity) if answer is not None else None

    async def put(
        self, key: str, answer: CachedAnswer, *, group: str | None = None, vector: Vectors | None = None
    ) -> bool:
        _check_indexing(group, vector)
        data = _entry_bytes(answer, self.max_entry_bytes)
        if data is None:
            return False
        now = time.monotonic()
        self._entries[key] = (data, now)
        self._entries.move_to_end(key)
        self._vectors.remove(key)
        unit = unit_vector(vector) if vector is not None else None
        if group is not None and unit is not None:
            self._vectors.add(group, key, unit, now)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))
        self._expire()
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._vectors = VectorIndex()

    def _expire(self) -> None:
        """Drop the entries older than the ttl (the oldest are first)."""
        oldest = time.monotonic() - self.ttl_seconds
        while self._entries:
            key, (_, stored_at) = next(iter(self._entries.items()))
            if stored_at > oldest:
                return
            self._drop(key)

    def _drop(self, key: str) -> None:
        del self._entries[key]
        self._vectors.remove(key)


class RedisResponseCache:
    """Every replica's answers, in Redis (see the module docstring for the layout). Each Redis command
    waits at most ``timeout_seconds``; :attr:`failures` counts the failed calls."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "routeyard",
        ttl_seconds: float,
        max_entries: int,
        max_entry_bytes: int,
        timeout_seconds: float = 0.5,
    ) -> None:
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._put = self._client.register_script(_PUT)
        self._vectors = VectorIndex()
        self._last_read = "0-0"  # the id of the last stream item read into _vectors
        self._failures = _FailureLog()

    @property
    def failures(self) -> int:
        """Calls that failed (a Redis error or timeout)."""
        return self._failures.failures

    @property
    def index_size(self) -> tuple[int, int]:
        """This replica's semantic index's (vectors, groups) as last read: at most ``max_entries`` of each."""
        return len(self._vectors), self._vectors.group_count()

    def entry_key(self, key: str) -> str:
        """The Redis key of ``key``'s entry."""
        return f"{self.prefix}:response_cache:entry:{key}"

    async def get(self, key: str) -> CachedAnswer | None:
        try:
            data = await self._client.get(self.entry_key(key))
        except _STORE_ERRORS as exc:
            self._failures.failed(exc)
            return None
        self._failures.answered()
        return decode_answer(data) if data is not None else None

    async def nearest(
        self, group: str, vector: Vectors, threshold: float
    ) -> tuple[CachedAnswer, float] | None:
        query = unit_vector(vector)
        if query is None:
            return None
        try:
            await self._read_new_vectors()
            candidates = self._vectors.best(group, query, threshold, _CANDIDATES)
            found = await self._first_stored(candidates)
        except _STORE_ERRORS as exc:
            self._failures.failed(exc)
            return None
        self._failures.answered()
        return found

    async def put(
        self, key: str, answer: CachedAnswer, *, group: str | None = None, vector: Vectors | None = None
    ) -> bool:
        _check_indexing(group, vector)
        data = _entry_bytes(answer, self.max_entry_bytes)
        if data is None:
            return False
        unit = unit_vector(vector) if vector is not None else None
        keys = [self.entry_key(key), self._name("order"), self._name("seq"), self._name("vectors")]
        args: list[str | int | bytes] = [data, self._ttl_ms(), self.max_entries, key, self.entry_key("")]
        if group is not None and unit is not None:
            args += ["1", group, unit.tobytes()]
        else:
            args += ["0", "", b""]
        try:
            await self._put(keys=keys, args=args)
        except _STORE_ERRORS as exc:
            self._failures.failed(exc)
            return False
        self._failures.answered()
        return True

    async def close(self) -> None:
        await self._client.aclose()

    def _name(self, part: str) -> str:
        return f"{self.prefix}:response_cache:{part}"

    def _ttl_ms(self) -> int:
        return max(1, math.ceil(self.ttl_seconds * 1000))

    async def _read_new_vectors(self) -> None:
        """Add the stream's items after the last one read to the local index (a page per round trip, at
        most :data:`_PAGES_PER_SEARCH`, so a replica starting cold catches up over a few searches, each
        ≈ 10 ms), then forget what has expired by Redis's clock or is beyond ``max_entries``."""
        redis_ms = 0.0
        for _ in range(_PAGES_PER_SEARCH):
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.xrange(self._name("vectors"), min=f"({self._last_read}", count=_PAGE)
                (seconds, microseconds), items = await pipe.execute()
            redis_ms = seconds * 1000 + microseconds / 1000
            for item_id, fields in items:
                self._read_item(item_id.decode(), fields)
            if len(items) < _PAGE:
                break
        self._vectors.trim(self.max_entries, redis_ms - self._ttl_ms())

    def _read_item(self, item_id: str, fields: dict[bytes, bytes]) -> None:
        """Index one stream item, unless a concurrent read already did (ids only grow); an item not of
        this layout is skipped."""
        if _stream_id(item_id) <= _stream_id(self._last_read):
            return
        self._last_read = item_id
        group, key, data = fields.get(b"g"), fields.get(b"k"), fields.get(b"v", b"")
        if group is None or key is None or not data or len(data) % 4:
            return
        vector = np.frombuffer(data, dtype=np.float32).copy()
        self._vectors.add(group.decode(), key.decode(), vector, _stream_id(item_id)[0])

    async def _first_stored(self, candidates: list[tuple[str, float]]) -> tuple[CachedAnswer, float] | None:
        """The first of ``candidates`` (best first) whose entry is still stored, with its similarity;
        candidates found missing are forgotten."""
        if not candidates:
            return None
        stored = await self._client.mget([self.entry_key(key) for key, _ in candidates])
        for (key, similarity), data in zip(candidates, stored, strict=True):
            answer = decode_answer(data) if data is not None else None
            if answer is not None:
                return answer, similarity
            self._vectors.remove(key)
        return None


def _stream_id(item_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = item_id.partition("-")
    return int(milliseconds), int(sequence or 0)


def _check_indexing(group: str | None, vector: Vectors | None) -> None:
    """Raises ValueError unless ``group`` and ``vector`` are given together or not at all (a caller's bug)."""
    if (group is None) != (vector is None):
        raise ValueError("put: group and vector go together")


def response_cache_store(settings: GatewaySettings) -> ResponseCacheStore:
    """The store ``settings`` (a ``GatewaySettings``) ask for: Redis at ``redis_url``, else memory, bounded
    by ``cache_ttl_seconds``, ``cache_max_entries`` and ``cache_max_entry_bytes``."""
    ttl, entries, entry_bytes = (
        settings.cache_ttl_seconds,
        settings.cache_max_entries,
        settings.cache_max_entry_bytes,
    )
    if settings.redis_url:
        return RedisResponseCache(
            settings.redis_url, ttl_seconds=ttl, max_entries=entries, max_entry_bytes=entry_bytes
        )
    return InMemoryResponseCache(ttl, entries, entry_bytes)
