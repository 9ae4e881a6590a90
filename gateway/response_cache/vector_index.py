"""Unit vectors by key, in groups, searched exactly for the most similar (cosine) at or above a
threshold: the semantic index of both response-cache stores (:class:`VectorIndex`; each group one numpy
matrix), and :func:`unit_vector`, how a store normalises a caller's vector."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from routeyard.arrays import Vectors

_ROUNDING = 1e-5  # float32 cosine rounding allowed below the threshold (an identical vector meets 1.0)
_MIN_ROWS = 16  # a group matrix's least capacity


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
