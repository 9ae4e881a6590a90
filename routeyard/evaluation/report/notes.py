"""The notes a replay report owes its reader: where a score means something other than it seems to.

- A zero-width AIQ range (every single model has the same mean test cost c): AIQ is the quality reached
  at c, so a router that cannot spend as little (a cascade, an agreement plan) scores 0; the note names
  each such router with its cheapest point, so "0" reads as "dearer", not "worse"
  (:mod:`routeyard.evaluation.aiq`).
- RouterBench's oracle point alone scoring below the Zero router (it costs more than the cheapest model,
  usual on graded quality, where the best answer is rarely a cheap one, and its hull is 0 below it): the
  note says so and why the oracle row here, a curve, is still the upper bound
  (:mod:`routeyard.evaluation.points`).
"""

from __future__ import annotations

from routeyard.evaluation.aiq import aiq, reaches
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.replay import DatasetResult, ReplayReport, RouterResult


def dataset_notes(result: DatasetResult) -> list[str]:
    """Sentences to print under one dataset's (not the pool's) table; empty when nothing needs saying."""
    return [*_zero_width_range(result), *_oracle_point_below_zero(result)]


def pooled_notes(report: ReplayReport) -> list[str]:
    """Sentences for the pooled table: which datasets' AIQs are scores at a single cost."""
    single_cost = [d.dataset for d in report.datasets if d.cost_range[0] == d.cost_range[1]]
    if not single_cost:
        return []
    return [
        f"The AIQ of {', '.join(single_cost)} is the quality at a single cost (every model costs the same "
        "there; see its notes), and enters the pooled mean as such."
    ]


def _zero_width_range(result: DatasetResult) -> list[str]:
    low, high = result.cost_range
    if low != high:
        return []
    dearer = [r for r in result.routers if not reaches(r.hull, low)]
    note = (
        f"Every single model has the same mean test cost here (${low:.6g} per prompt), so the AIQ cost range "
        f"has zero width: AIQ is the quality a router reaches at ${low:.6g} (its hull there)."
    )
    if dearer:
        note += (
            " These routers cannot spend as little and score 0 — dearer, not worse; their cheapest point: "
            + "; ".join(_cheapest_point(r) for r in dearer)
            + ". Compare them by that point, or by the RouterBench AIQ column (area from $0 to the "
            "dearest router's cost)."
        )
    return [note]


def _cheapest_point(router: RouterResult) -> str:
    cost, quality = float(router.hull.cost[0]), float(router.hull.quality[0])
    return f"{router.curve.router} ${cost:.6g}, quality {quality:.4f}"


def _oracle_point_below_zero(result: DatasetResult) -> list[str]:
    oracle = next((r for r in result.routers if r.curve.router == "oracle"), None)
    if oracle is None or "oracle" not in oracle.curve.labels:
        return []
    point = oracle.curve.labels.index("oracle")
    cost, quality = float(oracle.curve.cost[point]), float(oracle.curve.quality[point])
    alone = aiq(nondecreasing_hull([cost], [quality]), *result.cost_range)
    if alone >= result.zero_aiq:
        return []
    return [
        f"RouterBench's oracle point (per prompt the cheapest best answer: quality {quality:.4f} for "
        f"${cost:.6g}) would score AIQ {alone:.4f} alone, below the Zero router's {result.zero_aiq:.4f}: it "
        f"costs more than the cheapest model (${result.cost_range[0]:.6g}), usual on graded quality, where "
        "the best answer is rarely a cheap one, and a single point's hull is 0 below its cost. The oracle "
        "row is the best routing with the recorded truth at every budget (that point, willingness-to-pay "
        "routing on the true quality and cost at every w, every single model): an upper bound over the "
        "whole range."
    ]
