"""curves.png: one panel per dataset (and the pool), cost on a log axis, every router's hull."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from routeyard.evaluation.replay import DatasetResult, ReplayReport, RouterResult

_COLUMNS = 2


def write_curves_png(report: ReplayReport, path: Path) -> None:
    """Draw the pooled panel then one per dataset; single models are labelled points."""
    panels = [report.pooled, *report.datasets]
    rows = math.ceil(len(panels) / _COLUMNS)
    figure = Figure(figsize=(7.5 * _COLUMNS, 5.5 * rows), layout="constrained")
    axes = figure.subplots(rows, _COLUMNS, squeeze=False).ravel()
    for ax, result in zip(axes, panels, strict=False):
        _draw_panel(ax, result)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    figure.savefig(path, dpi=110)


def _draw_panel(ax: Axes, result: DatasetResult) -> None:
    models = result.single_models
    right = result.routerbench_max_cost * 1.5
    ax.scatter(models.cost, models.quality, color="black", s=18, zorder=3)
    for cost, quality, label in zip(models.cost, models.quality, models.labels, strict=True):
        ax.annotate(
            label.split("/")[-1], (cost, quality), fontsize=6.5, xytext=(3, 3), textcoords="offset points"
        )
    colours = _colours(len(result.routers))
    for router, colour in zip(result.routers, colours, strict=True):
        _draw_router(ax, router, colour, right)
    if result.dataset != "pooled":
        ax.axvspan(*result.cost_range, color="grey", alpha=0.08, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("mean $ cost per prompt (log)")
    ax.set_ylabel("mean quality")
    title = "pooled (mean over datasets)" if result.dataset == "pooled" else result.dataset
    ax.set_title(f"{title} — {result.n_test} test prompts")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")


def _draw_router(ax: Axes, router: RouterResult, colour: tuple[float, ...], right: float) -> None:
    hull = router.hull
    label = f"{router.curve.router} (AIQ {router.aiq:.3f})"
    if len(router.curve.cost) == 1:
        ax.scatter(
            router.curve.cost, router.curve.quality, marker="*", s=90, color=colour, label=label, zorder=4
        )
        return
    cost = np.append(hull.cost, max(right, float(hull.cost[-1])))
    quality = np.append(hull.quality, hull.quality[-1])
    style = "--" if router.curve.router == "oracle" else "-"  # visible where a router meets the bound
    ax.plot(cost, quality, color=colour, lw=1.4, ls=style, label=label)
    ax.scatter(router.curve.cost, router.curve.quality, color=colour, s=5, alpha=0.5)


def _colours(count: int) -> list[tuple[float, ...]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [tuple(cmap(i % cmap.N)) for i in range(count)]
