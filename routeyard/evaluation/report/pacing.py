"""The budget-pacing part of a replay report (``routeyard replay --pace``): what it holds, in md and json.

A :class:`PacingReport` is every willingness-to-pay router of the replay streamed once per target through
a pacing controller (:func:`routeyard.evaluation.pacing.simulate_pacing`): per router and target, the final
spend against the target, spend over target as the stream goes on, the quality reached, and the best fixed
w in hindsight that spends no more on the same prompts, with the quality ratio between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeyard.evaluation.pacing import PacingRun
from routeyard.policy.pacing import PacingTuning

SERIES_POINTS = 20
"""Points of the spend-over-target series in report.json (evenly spaced prompts of the stream, the last
one included); report.md shows every fourth."""


@dataclass(frozen=True)
class PacedRouter:
    """One router streamed at one target: ``target`` as the user gave it (``25%``, ``$0.002``);
    ``reach_usd_per_prompt`` is what the router spends per prompt of the stream at the controller's
    w_max, the dearest routing its predictions give (a target above it is out of reach)."""

    router: str
    target: str
    run: PacingRun
    reach_usd_per_prompt: float

    @property
    def reach_ratio(self) -> float:
        """What the router spends at w_max, over the target."""
        return self.reach_usd_per_prompt / self.run.target_usd_per_prompt


@dataclass(frozen=True)
class PacingReport:
    """The paced streams of a replay: the test prompts of the replayed datasets (``n_prompts``) in the
    order of ``numpy.random.default_rng(seed).permutation``, one prompt per virtual second, with the
    controller ``tuning`` (its ``w_initial`` per run is in each run); a percentage target is of
    ``reference_model``'s spend per prompt on those prompts, ``reference_usd_per_prompt`` (the model of
    highest mean train quality)."""

    reference_model: str
    reference_usd_per_prompt: float
    seed: int
    n_prompts: int
    tuning: PacingTuning
    runs: tuple[PacedRouter, ...]


def spend_series(run: PacingRun, points: int = SERIES_POINTS) -> list[dict[str, float]]:
    """Spend so far over target so far, and the w in use, at ``points`` (at most one per prompt) evenly
    spaced prompts of the stream, ending at its last."""
    n = len(run.rows)
    marks = np.unique(np.linspace(n / min(points, n), n, min(points, n)).round().astype(int)) - 1
    ratio = run.spend_ratio
    return [
        {
            "prompt": int(k) + 1,
            "spend_ratio": float(ratio[k]),
            "willingness_to_pay": float(run.willingness_to_pay[k]),
        }
        for k in marks
    ]


def pacing_section(pacing: PacingReport) -> list[str]:
    """report.md's lines: the method, one row per router and target, the series at a few points."""
    t = pacing.tuning
    lines = [
        "## Budget pacing",
        "",
        f"Each willingness-to-pay router streamed the {pacing.n_prompts} test prompts in a seeded random "
        f"order (seed {pacing.seed}), one at a time, its w set by the pacing controller (PI on log w, w in "
        f"[{t.w_min:g}, {t.w_max:g}], response {t.response_seconds:g} prompts, kp {t.proportional_gain:g}, "
        f"ki {t.integral_gain:g}; starting at the fixed w that spends the target on the train split). "
        f"A prompt goes where the predictions say at the current w and spends its recorded cost. "
        f"Percentage targets are of always-{pacing.reference_model}'s spend on these prompts "
        f"(${pacing.reference_usd_per_prompt:.6g} per prompt; the model of highest mean train quality). "
        "**Reach** is what the router spends at w_max (the dearest routing its predictions give): a "
        "target above it is out of reach, and the run then spends about the reach. **Best fixed w** is "
        "the fixed w of highest quality on the same prompts and predictions among those spending no more "
        "than the paced run did.",
        "",
        "| router | target | $ per prompt | reach / target | spend / target | quality | best fixed w "
        "| its quality | its spend / target | quality ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(p) for p in pacing.runs),
        "",
        "Spend / target so far (w in use) along the stream:",
        "",
    ]
    for paced in pacing.runs:
        points = spend_series(paced.run)[3::4]
        cells = ", ".join(
            f"{p['prompt']}: {p['spend_ratio']:.2f} ({p['willingness_to_pay']:.3g})" for p in points
        )
        lines.append(f"- {paced.router} at {paced.target}: {cells}")
    return lines


def _row(paced: PacedRouter) -> str:
    run, best = paced.run, paced.run.hindsight
    return (
        f"| {paced.router} | {paced.target} | {run.target_usd_per_prompt:.6g} | {paced.reach_ratio:.3f} "
        f"| {run.final_spend_ratio:.3f} "
        f"| {run.mean_quality:.4f} | {best.willingness_to_pay:.3g} | {best.quality:.4f} "
        f"| {best.cost / run.target_usd_per_prompt:.3f} | {run.quality_ratio:.4f} |"
    )


def pacing_as_dict(pacing: PacingReport) -> dict[str, Any]:
    """report.json's ``pacing`` object (every number finite, or a string ``"inf"``, or null)."""
    return {
        "reference_model": pacing.reference_model,
        "reference_usd_per_prompt": pacing.reference_usd_per_prompt,
        "seed": pacing.seed,
        "n_prompts": pacing.n_prompts,
        "tuning": {
            "w_min": pacing.tuning.w_min,
            "w_max": pacing.tuning.w_max,
            "response_prompts": pacing.tuning.response_seconds,
            "proportional_gain": pacing.tuning.proportional_gain,
            "integral_gain": pacing.tuning.integral_gain,
            "deficit_cap": pacing.tuning.deficit_cap,
        },
        "runs": [_run_dict(p) for p in pacing.runs],
    }


def _run_dict(paced: PacedRouter) -> dict[str, Any]:
    run, best = paced.run, paced.run.hindsight
    return {
        "router": paced.router,
        "target": paced.target,
        "target_usd_per_prompt": run.target_usd_per_prompt,
        "w_initial": float(run.willingness_to_pay[0]),
        "spend_usd_per_prompt": run.mean_cost,
        "spend_ratio": run.final_spend_ratio,
        "reach_usd_per_prompt": paced.reach_usd_per_prompt,
        "reach_ratio": paced.reach_ratio,
        "quality": run.mean_quality,
        "best_fixed_w": {
            "willingness_to_pay": _finite_or_str(best.willingness_to_pay),
            "spend_usd_per_prompt": best.cost,
            "spend_ratio": best.cost / run.target_usd_per_prompt,
            "quality": best.quality,
        },
        "quality_ratio": _finite_or_str(run.quality_ratio),
        "series": spend_series(run),
    }


def _finite_or_str(value: float) -> float | str:
    return float(value) if math.isfinite(value) else "inf"
