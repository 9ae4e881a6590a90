"""The non-decreasing convex hull of a router's (cost, quality) points (RouterBench §3).

The hull H is the upper concave envelope from the cheapest point up to the first point of maximum
quality, then flat. Any point on it is reachable by randomly mixing two of the router's settings, so a
router is judged by its hull rather than by its raw points. Below the cheapest point H is 0 (nothing is
reachable there); after the last vertex it stays at the maximum quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from routeyard.arrays import FloatArray


@dataclass(frozen=True)
class Hull:
    """Vertices of a non-decreasing concave hull: ``cost`` strictly ascending, ``quality`` ascending."""

    cost: FloatArray
    quality: FloatArray

    def __call__(self, cost: ArrayLike) -> FloatArray:
        """H at ``cost`` ($): 0 below the first vertex, linear between vertices, flat after the last."""
        at = np.asarray(cost, dtype=np.float64)
        return np.asarray(np.interp(at, self.cost, self.quality, left=0.0, right=self.quality[-1]))

    @property
    def max_quality(self) -> float:
        return float(self.quality[-1])

    @property
    def cost_at_max_quality(self) -> float:
        return float(self.cost[-1])


def nondecreasing_hull(cost: ArrayLike, quality: ArrayLike) -> Hull:
    """The hull of the points ``(cost[i], quality[i])`` in O(p log p).

    Handles one point, equal costs (the best quality is kept), duplicates and dominated points.
    Raises ``ValueError`` for no points, mismatched lengths or non-finite values.
    """
    c = np.asarray(cost, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if c.shape != q.shape or c.size == 0:
        raise ValueError(f"need ≥ 1 point with as many costs as qualities, got {c.size} and {q.size}")
    if not (np.isfinite(c).all() and np.isfinite(q).all()):
        raise ValueError("hull points must be finite")
    c, q = _best_per_cost(c, q)
    last = int(np.argmax(q))  # first point of maximum quality: everything dearer is flat beyond it
    return _upper_envelope(c[: last + 1], q[: last + 1])


def _best_per_cost(c: FloatArray, q: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Points sorted by cost ascending, one per distinct cost, keeping the best quality."""
    order = np.lexsort((-q, c))
    c, q = c[order], q[order]
    first_of_cost = np.concatenate([[True], c[1:] != c[:-1]])
    return c[first_of_cost], q[first_of_cost]


def _upper_envelope(c: FloatArray, q: FloatArray) -> Hull:
    """Andrew's monotone chain, upper half, over points with strictly ascending cost."""
    keep: list[int] = []
    for i in range(len(c)):
        while len(keep) >= 2 and _not_right_turn(c, q, keep[-2], keep[-1], i):
            keep.pop()
        keep.append(i)
    return Hull(cost=c[keep], quality=q[keep])


def _not_right_turn(c: FloatArray, q: FloatArray, a: int, b: int, i: int) -> bool:
    """True when b lies on or below the segment a→i, so b is not a vertex of the upper envelope."""
    cross = (c[b] - c[a]) * (q[i] - q[a]) - (q[b] - q[a]) * (c[i] - c[a])
    return bool(cross >= 0.0)
