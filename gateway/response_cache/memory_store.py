"""The response cache's store for one process (no ``redis_url``): :class:`InMemoryResponseCache`, one
process's entries, at most ``max_total_bytes`` of answers (and ``max_entries`` entries) plus the vectors;
for one event loop (no locks: no method awaits). What every store promises (ttl, bounds, never failing
a request) is in ``routeyard.gateway.response_cache.store``.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from routeyard.arrays import Vectors
from routeyard.gateway.response_cache.store import CachedAnswer, check_indexing, decode_answer, entry_bytes
from routeyard.gateway.response_cache.vector_index import VectorIndex, unit_vector


class InMemoryResponseCache:
    """One process's answers: at most ``max_entries`` entries of at most ``max_entry_bytes`` each and at
    most ``max_total_bytes`` in all (None: no total bound), the oldest evicted first, each for
    ``ttl_seconds`` (see the ``store`` module's docstring). Expired entries are dropped as the cache is
    used."""

    def __init__(
        self, ttl_seconds: float, max_entries: int, max_entry_bytes: int, max_total_bytes: int | None = None
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.max_total_bytes = max_total_bytes
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # key -> (bytes, stored at)
        self._bytes = 0  # of every entry's bytes
        self._vectors = VectorIndex()

    @property
    def total_bytes(self) -> int:
        """The bytes of every answer held."""
        return self._bytes

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
        check_indexing(group, vector)
        data = entry_bytes(answer, self.max_entry_bytes)
        if data is None or (self.max_total_bytes is not None and len(data) > self.max_total_bytes):
            return False
        if key in self._entries:
            self._drop(key)
        now = time.monotonic()
        self._entries[key] = (data, now)
        self._bytes += len(data)
        unit = unit_vector(vector) if vector is not None else None
        if group is not None and unit is not None:
            self._vectors.add(group, key, unit, now)
        while len(self._entries) > self.max_entries or self._over_total():
            self._drop(next(iter(self._entries)))
        self._expire()
        return True

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self._vectors = VectorIndex()

    def _over_total(self) -> bool:
        return self.max_total_bytes is not None and self._bytes > self.max_total_bytes

    def _expire(self) -> None:
        """Drop the entries older than the ttl (the oldest are first)."""
        oldest = time.monotonic() - self.ttl_seconds
        while self._entries:
            key, (_, stored_at) = next(iter(self._entries.items()))
            if stored_at > oldest:
                return
            self._drop(key)

    def _drop(self, key: str) -> None:
        data, _ = self._entries.pop(key)
        self._bytes -= len(data)
        self._vectors.remove(key)
