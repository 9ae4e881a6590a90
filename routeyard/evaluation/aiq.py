"""AIQ, the Average Improvement in Quality of a router: the mean height of its hull over a cost range.

Two variants (architecture.md §7):

* :func:`aiq` — ours: the mean of H over a fixed range [c_lo, c_hi], the cheapest and the dearest single
  model's mean cost on that dataset and split, so every router on a dataset is scored on the same range.
* :func:`routerbench_aiq` — the paper's: the area under H from 0 to the largest cost among the compared
  routers (H is 0 before its first point and flat after its last), divided by that cost.

A zero-width range (every single model has the same mean cost c: one price for all, or one model) has no
area to average over; AIQ is then its limit, the quality the router reaches at c, H(c). A router that
cannot spend as little as c (its cheapest point costs c_0 > c: a cascade or an agreement plan pays for
several calls) scores 0 there. Scoring it instead by its quality at c_0 was considered and rejected: it
is not monotone (giving a router one more, cheap option could lower its score) and it would rank a
dearer router above the models it pays several of. The score is honest only if it is explained, so
whoever reports it must say which routers could not reach c and what their cheapest point buys (the
replay report does). Costs within a relative 1e-9 of c count as c: a router whose per-prompt costs are
the models' own, averaged in another order, must not drop to 0 by a rounding error.

The RouterBench variant with a largest cost of 0 (every compared router is free) is H(0), its limit.
"""

from __future__ import annotations

import numpy as np

from routeyard.arrays import FloatArray
from routeyard.evaluation.hull import Hull, Hulls

SAME_COST = 1e-9
"""Relative difference under which two mean costs count as equal (float rounding, not a price)."""


def area_under_hull(hull: Hull, low: float, high: float) -> float:
    """∫ H(c) dc from ``low`` to ``high`` ($ × quality); exact, since H is piecewise linear."""
    if high < low:
        raise ValueError(f"empty cost range [{low}, {high}]")
    start = max(low, float(hull.cost[0]))  # H is 0 below its first vertex
    if high <= start:
        return 0.0
    inside = hull.cost[(hull.cost > start) & (hull.cost < high)]
    x = np.concatenate([[start], inside, [high]])
    y = hull(x)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def aiq(hull: Hull, cost_low: float, cost_high: float) -> float:
    """Mean of H over [cost_low, cost_high]; for a zero-width range (low == high), H there (0 when the
    hull starts above it; module docstring). Raises ``ValueError`` when ``cost_high < cost_low``."""
    if cost_high == cost_low:
        return float(hull(max(cost_low, float(hull.cost[0])))) if reaches(hull, cost_low) else 0.0
    return area_under_hull(hull, cost_low, cost_high) / (cost_high - cost_low)


def reaches(hull: Hull, cost: float) -> bool:
    """Whether the router can spend as little as ``cost`` ($): its cheapest point costs no more, up to
    rounding (:data:`SAME_COST`)."""
    return float(hull.cost[0]) <= cost * (1.0 + SAME_COST)


def aiq_of_hulls(hulls: Hulls, cost_low: FloatArray, cost_high: FloatArray) -> FloatArray:
    """(B,) :func:`aiq` of each of ``hulls`` over its own range [cost_low[b], cost_high[b]], at once.

    Raises ``ValueError`` when some ``cost_high < cost_low``.
    """
    if np.any(cost_high < cost_low):
        raise ValueError("empty cost range")
    x, y = hulls.cost, hulls.quality
    low, high = cost_low[:, None], cost_high[:, None]
    x0, x1, y0, y1 = x[:, :-1], x[:, 1:], y[:, :-1], y[:, 1:]
    width = x1 - x0
    slope = np.divide(y1 - y0, width, out=np.zeros_like(width), where=width > 0.0)
    a, b = np.clip(x0, low, high), np.clip(x1, low, high)
    area = np.sum((b - a) * (2.0 * y0 + slope * (a - x0 + b - x0)) / 2.0, axis=1)
    area += y[:, -1] * np.maximum(0.0, cost_high - np.maximum(x[:, -1], cost_low))  # flat after the last
    span = cost_high - cost_low
    out: FloatArray = np.divide(area, span, out=np.zeros_like(area), where=span > 0.0)
    for row in np.flatnonzero(span == 0.0):  # rare: every model at one price
        out[row] = aiq(hulls[int(row)], float(cost_low[row]), float(cost_high[row]))
    return out


def routerbench_aiq(hull: Hull, max_cost: float) -> float:
    """RouterBench's AIQ: area under H on [0, max_cost] divided by ``max_cost``; H(0) when ``max_cost``
    is 0. Raises ``ValueError`` for a negative ``max_cost``."""
    if max_cost < 0.0:
        raise ValueError(f"max_cost must be ≥ 0, got {max_cost}")
    if max_cost == 0.0:
        return float(hull(0.0))
    return area_under_hull(hull, 0.0, max_cost) / max_cost
