"""An on-disk embedding cache: each distinct text is embedded once per embedder, ever.

:class:`CachedEmbedder` wraps any :class:`~predictor.embedder.Embedder` and behaves as it does, but keeps
every vector in an SQLite file under the key SHA-256(embedder cache key, text). Texts are not stored,
only their hashes, so the cache holds no prompt text. A replay of 36k prompts embeds each prompt once;
the second replay reads them all. Several embedders can share one file. Vectors are exactly the
wrapped embedder's float32 output.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import Embedder

_CHUNK = 500  # keys per SELECT; SQLite allows at most 999 parameters on old builds


class CachedEmbedder:
    """An :class:`Embedder` that reads vectors from ``path`` and embeds (then stores) only the misses.

    Attributes ``hits`` and ``misses`` count texts served from the file and texts embedded, since
    construction. Not safe to share across threads; separate processes may share the file.
    """

    def __init__(self, inner: Embedder, path: str | Path) -> None:
        self.inner = inner
        self.identity = inner.identity
        self.cache_key = inner.cache_key
        self.dimension = inner.dimension
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    def embed(self, texts: Sequence[str]) -> Vectors:
        keys = [self._key(text) for text in texts]
        found = self._read(set(keys))
        todo = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if todo:
            computed = self.inner.embed(list(todo.values()))
            fresh = dict(zip(todo, computed, strict=True))
            self._write(fresh)
            found.update(fresh)
        self.misses += len(todo)
        self.hits += len(texts) - len(todo)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def _key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.cache_key}\0{text}".encode()).digest()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is closed in any case."""
        db = sqlite3.connect(self.path, timeout=30.0)
        try:
            with db:
                yield db
        finally:
            db.close()

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

    def _write(self, vectors: dict[bytes, Vectors]) -> None:
        rows = [(key, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for key, v in vectors.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)", rows)


def _chunks(keys: list[bytes]) -> Iterator[list[bytes]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]
