"""AIQ, the Average Improvement in Quality of a router: the mean height of its hull over a cost range.

Two variants (architecture.md §7):

* :func:`aiq` — ours: the mean of H over a fixed range [c_lo, c_hi], the cheapest and the dearest single
  model's mean cost on that dataset and split, so every router on a dataset is scored on the same range.
* :func:`routerbench_aiq` — the paper's: the area under H from 0 to the largest cost among the compared
  routers (H is 0 before its first point and flat after its last), divided by that cost.
"""

from __future__ import annotations

import numpy as np

from routeyard.evaluation.hull import Hull


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
    """Mean of H over [cost_low, cost_high]; for a degenerate range (low == high), H there."""
    if cost_high == cost_low:
        return float(hull(cost_low))
    return area_under_hull(hull, cost_low, cost_high) / (cost_high - cost_low)


def routerbench_aiq(hull: Hull, max_cost: float) -> float:
    """RouterBench's AIQ: area under H on [0, max_cost] divided by ``max_cost`` (> 0)."""
    if max_cost <= 0.0:
        raise ValueError(f"max_cost must be > 0, got {max_cost}")
    return area_under_hull(hull, 0.0, max_cost) / max_cost
