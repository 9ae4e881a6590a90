"""The non-decreasing convex hull of a router's (cost, quality) points (RouterBench §3).

The hull H is the upper concave envelope from the cheapest point up to the first point of maximum
quality, then flat. Any point on it is reachable by randomly mixing two of the router's settings, so a
router is judged by its hull rather than by its raw points. Below the cheapest point H is 0 (nothing is
reachable there); after the last vertex it stays at the maximum quality.

:func:`nondecreasing_hulls` builds many hulls at once (a bootstrap's replicates of one curve): the same
steps, vectorised over rows, giving the same vertices as :func:`nondecreasing_hull` row by row (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from routeyard.arrays import BoolArray, FloatArray, IndexArray


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


@dataclass(frozen=True)
class Hulls:
    """B hulls: row b's vertices are ``cost[b, :count[b]]``, ``quality[b, :count[b]]``; the rest of the
    row repeats its last vertex, so every row is a valid (if padded) vertex list of width k."""

    cost: FloatArray
    quality: FloatArray
    count: IndexArray

    def __getitem__(self, row: int) -> Hull:
        end = int(self.count[row])
        return Hull(cost=self.cost[row, :end], quality=self.quality[row, :end])


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


def nondecreasing_hulls(cost: FloatArray, quality: FloatArray) -> Hulls:
    """The hull of each row's points ``(cost[b, i], quality[b, i])``, (B, p) each, all rows at once.

    Raises ``ValueError`` for mismatched or empty arrays or non-finite values.
    """
    if cost.shape != quality.shape or cost.ndim != 2 or cost.shape[1] == 0:
        raise ValueError(f"need (B, p ≥ 1) costs and qualities, got {cost.shape} and {quality.shape}")
    if not (np.isfinite(cost).all() and np.isfinite(quality).all()):
        raise ValueError("hull points must be finite")
    order = np.lexsort((-quality, cost), axis=1)
    c, q = np.take_along_axis(cost, order, axis=1), np.take_along_axis(quality, order, axis=1)
    rows, columns = np.arange(len(c)), np.arange(c.shape[1])
    candidate = np.ones(c.shape, dtype=bool)
    candidate[:, 1:] = c[:, 1:] != c[:, :-1]  # the best of each cost comes first
    candidate &= columns <= np.argmax(q, axis=1)[:, None]
    stack, count = _upper_envelopes(c, q, candidate)
    last = np.minimum(columns, count[:, None] - 1)
    vertex = stack[rows[:, None], last]
    return Hulls(c[rows[:, None], vertex], q[rows[:, None], vertex], count)


def _upper_envelopes(c: FloatArray, q: FloatArray, candidate: BoolArray) -> tuple[IndexArray, IndexArray]:
    """Andrew's monotone chain on every row at once, over the ``candidate`` points (ascending cost):
    each row's stack of vertex columns (B, p) and its height (B,)."""
    rows = np.arange(len(c))
    stack = np.zeros(c.shape, dtype=np.intp)
    count = np.zeros(len(c), dtype=np.intp)
    for i in range(c.shape[1]):
        while True:
            a = stack[rows, np.maximum(count - 2, 0)]
            b = stack[rows, np.maximum(count - 1, 0)]
            cross = (c[rows, b] - c[rows, a]) * (q[:, i] - q[rows, a]) - (q[rows, b] - q[rows, a]) * (
                c[:, i] - c[rows, a]
            )
            pop = candidate[:, i] & (count >= 2) & (cross >= 0.0)
            if not pop.any():
                break
            count -= pop
        push = rows[candidate[:, i]]
        stack[push, count[push]] = i
        count[push] += 1
    return stack, count


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
