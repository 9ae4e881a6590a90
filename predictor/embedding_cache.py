"""An on-disk embedding cache: each distinct text is embedded once per embedder, within a size bound.

:class:`CachedEmbedder` wraps any :class:`~predictor.embedder.Embedder` and behaves as it does, but keeps
vectors in an SQLite file under the key SHA-256(embedder cache key, text). Texts are not stored, only
their hashes, so the cache holds no prompt text. A replay of 36k prompts embeds each prompt once; the
second replay reads them all. Several embedders (and processes) can share one file. Vectors are exactly
the wrapped embedder's float32 output.

**Bounded.** The rows' pages on disk are kept within ``max_bytes`` (default 1 GiB): after a write
that takes them over, the least recently used rows are deleted until they fill at most
:data:`LOW_WATER` of it. The file's size stays within ``max_bytes`` plus the last batch written (freed
pages are reused, the file is never shrunk). Recency is a ``used`` timestamp per row; a hit does not
write at once — hits are remembered in memory and stamped in one transaction with the next write, or
every :data:`TOUCH_BATCH` hits, or on :meth:`CachedEmbedder.flush` (hits not yet flushed when a
process ends only lose their recency).

**Never fails a request.** Any error of the file — a directory that cannot be written, a full disk,
a database locked for longer than ``timeout`` or corrupt — is logged once (the error's type, never
text) and counted in ``failures``; from then on the embedder embeds everything itself (uncached) and
never touches the file again. Errors of the wrapped embedder itself still propagate.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import Embedder

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1 << 30  # 1 GiB
MIN_MAX_BYTES = 64 << 10  # below this the schema's own pages leave no room for vectors
LOW_WATER = 0.8  # eviction frees down to this fraction of max_bytes, so it runs once per 20% of churn
TOUCH_BATCH = 1024  # hits remembered in memory before their recency is written
_EVICTION_ROUNDS = 8  # deletes per eviction at most; each re-measures the pages actually freed
_CHUNK = 500  # keys per statement; SQLite allows at most 999 parameters on old builds
_CACHE_ERRORS = (sqlite3.Error, OSError)

T = TypeVar("T")


class CachedEmbedder:
    """An :class:`Embedder` that reads vectors from ``path`` and embeds (then stores) only the misses.

    Attributes ``hits`` and ``misses`` count texts served from the file and texts embedded, since
    construction; ``failures`` counts errors of the file (at most 1: the first disables the cache,
    see the module docstring). ``max_bytes`` (≥ :data:`MIN_MAX_BYTES`, else ``ValueError``) bounds the
    file; ``timeout`` (s) is how long to wait for another process's lock before giving up on the file.
    Not safe to share across threads; separate processes may share the file.
    """

    def __init__(
        self,
        inner: Embedder,
        path: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 10.0,
    ) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
        self.inner = inner
        self.identity = inner.identity
        self.cache_key = inner.cache_key
        self.dimension = inner.dimension
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.hits = 0
        self.misses = 0
        self.failures = 0
        self.enabled = True
        self._touched: dict[bytes, int] = {}  # hit keys whose recency is not yet on disk → when used
        self._clock = 0
        self._guarded(self._create)

    def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(text) for text in texts]
        found = self._guarded(lambda: self._read(set(keys))) or {}
        todo = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        now = self._now()
        self._touched.update(dict.fromkeys(found, now))
        if todo:
            computed = self.inner.embed(list(todo.values()))
            fresh = dict(zip(todo, computed, strict=True))
            self._guarded(lambda: self._write(fresh, now))
            found.update(fresh)
        elif len(self._touched) >= TOUCH_BATCH:
            self.flush()
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def flush(self) -> None:
        """Write the recency of the hits remembered in memory (never raises)."""
        if self._touched:
            self._guarded(lambda: self._write({}, self._now()))

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.cache_key}\0{text}".encode()).digest()

    def _now(self) -> int:
        """Nanoseconds since the epoch, strictly increasing within this embedder."""
        self._clock = max(time.time_ns(), self._clock + 1)
        return self._clock

    def _guarded(self, operation: Callable[[], T]) -> T | None:
        """``operation()``, or None once the file has failed (the first failure is logged and counted
        and disables the file for good)."""
        if not self.enabled:
            return None
        try:
            return operation()
        except _CACHE_ERRORS as exc:
            self.enabled, self.failures = False, self.failures + 1
            self._touched.clear()
            logger.warning(
                "embedding cache %s failed (%s); embedding uncached from now on",
                self.path,
                type(exc).__name__,
            )
            return None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is closed in any case."""
        db = sqlite3.connect(self.path, timeout=self.timeout)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _create(self) -> None:
        """The file, its table (with ``used``, added to files from before it) and the recency index."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors "
                "(key BLOB PRIMARY KEY, vector BLOB NOT NULL, used INTEGER NOT NULL DEFAULT 0)"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(vectors)")}
            if "used" not in columns:
                db.execute("ALTER TABLE vectors ADD COLUMN used INTEGER NOT NULL DEFAULT 0")
            db.execute("CREATE INDEX IF NOT EXISTS vectors_by_use ON vectors (used)")

    def _read(self, keys: set[bytes]) -> dict[bytes, Vectors]:
        found: dict[bytes, Vectors] = {}
        with self._connect() as db:
            for chunk in _chunks(sorted(keys)):
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, vector FROM vectors WHERE key IN ({marks})"
                for key, blob in db.execute(query, chunk):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dimension,):
                        found[key] = vector
        return found

    def _write(self, vectors: dict[bytes, Vectors], now: int) -> None:
        """In one transaction: stamp the remembered hits, insert ``vectors`` used ``now``, evict."""
        rows = [(key, np.ascontiguousarray(v, dtype=np.float32).tobytes(), now) for key, v in vectors.items()]
        touches = [(used, key) for key, used in self._touched.items()]
        with self._connect() as db:
            db.executemany("UPDATE vectors SET used = max(used, ?) WHERE key = ?", touches)
            db.executemany("INSERT OR REPLACE INTO vectors (key, vector, used) VALUES (?, ?, ?)", rows)
            if rows:
                self._evict(db)
        self._touched.clear()

    def _evict(self, db: sqlite3.Connection) -> None:
        """Delete the least recently used rows while their pages exceed ``max_bytes``, down to
        :data:`LOW_WATER` of it (bounded rounds: deleting rows frees fewer pages than their share)."""
        used = _used_bytes(db)
        if used <= self.max_bytes:
            return
        target = self.max_bytes * LOW_WATER
        for _ in range(_EVICTION_ROUNDS):
            (count,) = db.execute("SELECT count(*) FROM vectors").fetchone()
            if used <= target or count == 0:
                return
            doomed = max(1, math.ceil(count * (used - target) / used))
            db.execute(
                "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY used LIMIT ?)",
                (doomed,),
            )
            used = _used_bytes(db)


def _used_bytes(db: sqlite3.Connection) -> int:
    """The bytes of the database's pages in use (its file less the free pages it will reuse)."""
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    return int(page_size) * (int(pages) - int(free))


def _chunks(keys: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]
