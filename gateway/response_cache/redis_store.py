"""The response cache's store for the fleet: :class:`RedisResponseCache`, the fleet's answers, in Redis
(``<prefix>`` is ``routeyard`` by default). What every store promises (ttl, bounds, never failing a
request) is in ``routeyard.gateway.response_cache.store``. The layout:

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

import math

import numpy as np
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.arrays import Vectors
from routeyard.gateway.outage_log import OutageLog
from routeyard.gateway.response_cache.store import CachedAnswer, check_indexing, decode_answer, entry_bytes
from routeyard.gateway.response_cache.vector_index import VectorIndex, unit_vector

_CANDIDATES = 8  # best matches fetched at once by RedisResponseCache.nearest
_PAGE = 1000  # stream items read per XRANGE
_PAGES_PER_SEARCH = 2  # a replica that is behind catches up over a few searches, ≤ 2 pages each
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
        self.outages = OutageLog("response cache", "misses until it answers")  # failed calls counted

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
            self.outages.failed(exc)
            return None
        self.outages.answered()
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
            self.outages.failed(exc)
            return None
        self.outages.answered()
        return found

    async def put(
        self, key: str, answer: CachedAnswer, *, group: str | None = None, vector: Vectors | None = None
    ) -> bool:
        check_indexing(group, vector)
        data = entry_bytes(answer, self.max_entry_bytes)
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
            self.outages.failed(exc)
            return False
        self.outages.answered()
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
