"""report.md and report.json: the numbers of a replay, for people and for programs."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from routeyard.evaluation.bootstrap import LEVEL, GainInterval
from routeyard.evaluation.deployed_routers import DeployedConfig
from routeyard.evaluation.points import Curve
from routeyard.evaluation.replay import DatasetResult, ReplayReport, RouterResult
from routeyard.evaluation.report.notes import dataset_notes, pooled_notes
from routeyard.evaluation.report.pacing import pacing_as_dict, pacing_section
from routeyard.judges.judge_metrics import JudgeErrorRates


def write_markdown(report: ReplayReport, path: Path) -> None:
    """Write the human report: method, then one table per dataset and the pooled table."""
    path.write_text(render_markdown(report), encoding="utf-8")


def write_json(report: ReplayReport, path: Path) -> None:
    """Write every number of the report (curves and hulls included) as JSON."""
    path.write_text(json.dumps(report_as_dict(report), indent=2, allow_nan=False), encoding="utf-8")


def render_markdown(report: ReplayReport) -> str:
    s = report.settings
    lines = [
        "# routeyard replay report",
        "",
        f"Data: `{report.source}`; {len(report.datasets)} datasets, "
        f"{report.pooled.n_test} test prompts ({report.pooled.n_train} train).",
        f"Split: per dataset by sample_id, seed {s.seed}, 70 % train / 30 % test; scores are on test.",
        "",
        "**AIQ** is the mean height of a router's non-decreasing convex hull over the dataset's fixed cost "
        "range, from the cheapest to the dearest single model's mean test cost (given per dataset), so "
        "every router on a dataset is scored over the same range. **AIQ (RouterBench)** is the paper's "
        "variant: area under the hull from $0 to the largest cost among the compared routers, divided by "
        "that cost. Missing quality counts as 0. Pooled rows are unweighted means over datasets.",
        "",
        "**oracle** is the best routing with the recorded truth at every budget: RouterBench's oracle point "
        "(per prompt the cheapest best answer), willingness-to-pay routing on the true quality and cost at "
        "every w, and every single model; its hull bounds every router over the whole range (up to the "
        "resolution of the w grid). "
        "**wtp-perfect** is our willingness-to-pay router fed the recorded truth: what a perfect predictor "
        "would reach. **Gain over Zero** is a router's AIQ minus the Zero router's (the hull of the single "
        "models).",
        "",
        _bootstrap_method(report),
        *_plans_method(report),
        "",
        f"Willingness-to-pay grid: {len(s.grid)} values (0, {len(s.grid) - 2} log-spaced from "
        f"{s.grid[1]:g} to {s.grid[-2]:g}, inf). Cascade: models by ascending mean train cost, threshold "
        f"{s.threshold:g}, budgets {', '.join(f'{b:g}' for b in s.budgets)} $/prompt, one curve per "
        "simulated judge error rate ε.",
    ]
    if report.selections:
        lines += ["", "Hyperparameters chosen by cross-validation inside the train split:"]
        lines += [f"- {name}: {chosen['summary']}" for name, chosen in report.selections.items()]
    if report.repairs:
        lines += ["", "Repairs made while loading:", *(f"- {r}" for r in report.repairs)]
    if report.deployment is not None:
        lines += ["", *_deployment_section(report.deployment)]
    if report.pacing is not None:
        lines += ["", *pacing_section(report.pacing)]
    lines += ["", *_dataset_section(report.pooled, pooled_notes(report))]
    for result in report.datasets:
        lines += ["", *_dataset_section(result, dataset_notes(result))]
    return "\n".join(lines) + "\n"


def _deployment_section(deployment: DeployedConfig) -> list[str]:
    """The config replayed: its file and hash, each router's operating point, what was left out."""
    lines = [
        "## Deployed config",
        "",
        f"Config `{deployment.path}` (SHA-256 `{deployment.sha256}`): its routers replayed as configured "
        "(artifact, willingness to pay, backend mapping, excludes; a cascade's judge, order, threshold "
        "and budget), through the gateway's decision functions. Each router's curve is its sweep (w "
        "grid, or cascade budgets) in the tables below, under its config name; its **operating point** "
        "is where its configured setting lands.",
        "",
        "| router | dataset | setting | $ per prompt | quality |",
        "|---|---|---|---:|---:|",
        *(
            f"| {p.router} | {p.dataset} | {p.label} | {p.cost:.6g} | {p.quality:.4f} |"
            for p in deployment.operating_points
        ),
    ]
    if deployment.skipped:
        lines += ["", "Not replayed:", *(f"- {name}: {why}" for name, why in deployment.skipped.items())]
    if deployment.missing_backends:
        lines += ["", f"Backends of the config the table lacks: {', '.join(deployment.missing_backends)}."]
    if deployment.unused_models:
        lines += [
            "",
            f"Models of the table that are no backend (left out): {', '.join(deployment.unused_models)}.",
        ]
    return lines


def _bootstrap_method(report: ReplayReport) -> str:
    s = report.settings
    if s.bootstrap == 0:
        return "No bootstrap was run (`--bootstrap 0`): gains come without an interval."
    return (
        f"Intervals: {LEVEL:.0%} percentile intervals of a paired bootstrap over the test prompts "
        f"({s.bootstrap} resamples, seed {s.seed}): every router and the single models are rescored on "
        "the same draw, the cost range included; pooled, each dataset is drawn independently and the "
        "gain is the mean of the per-dataset gains. Only prompts are resampled (the routers and the "
        "simulated judges' verdicts stay fixed). `*`: the interval excludes 0."
    )


def _plans_method(report: ReplayReport) -> list[str]:
    if not {"agreement", "plan-predictions"} & set(report.settings.routers):
        return []
    return [
        "",
        "Plans: every model alone, and agreement pairs (call two cheaper models; keep the designated "
        "answer when their extracted final answers agree, else call the best model; chosen on the train "
        "split). **agreement** is the Zero router over every plan (the hull of every plan's point: static "
        "agreement cascades); **wtp-plan-<name>** routes among plans by willingness to pay from a "
        "predictor trained on the plans' train outcomes. Cost range, Zero, oracle, random and perfect stay "
        "over the base models.",
    ]


def _dataset_section(result: DatasetResult, notes: list[str]) -> list[str]:
    lo, hi = result.cost_range
    title = "Pooled (unweighted mean over datasets)" if result.dataset == "pooled" else result.dataset
    range_note = (
        "AIQ: mean of the per-dataset AIQs, each over its own cost range"
        if result.dataset == "pooled"
        else f"AIQ cost range ${lo:.6g} – ${hi:.6g} per prompt"
    )
    lines = [
        f"## {title}",
        "",
        f"{result.n_test} test prompts, {result.n_train} train; {range_note}; "
        f"RouterBench AIQ up to ${result.routerbench_max_cost:.6g}; "
        f"missing quality cells on test: {result.missing_quality}; Zero router AIQ {result.zero_aiq:.4f}.",
        "",
        *(f"Note: {note}" for note in notes),
        *([""] if notes else []),
        f"| router | AIQ | gain over Zero{_interval_heading()} | AIQ (RouterBench) | max quality "
        "| $ per prompt at max quality |",
        "|---|---:|---:|---:|---:|---:|",
        *(_router_row(r, result.zero_aiq) for r in result.routers),
        "",
        "| single model | mean quality | mean $ per prompt |",
        "|---|---:|---:|",
    ]
    models = result.single_models
    order = sorted(range(len(models.labels)), key=lambda i: models.cost[i])
    lines += [f"| {models.labels[i]} | {models.quality[i]:.4f} | {models.cost[i]:.6g} |" for i in order]
    if result.judges:
        lines += [
            "",
            f"Real judges on the test answers, at threshold {result.judges[0].rates.threshold:g} "
            "(false accept: bad answers accepted / bad; false reject: good answers rejected / good; "
            "error: wrong verdicts / all, comparable to the simulated ε):",
            "",
            "| judge | answers | good | false accept | false reject | error | ROC AUC |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *(_judge_row(j.name, j.rates) for j in result.judges),
        ]
    return lines


def _judge_row(name: str, r: JudgeErrorRates) -> str:
    return (
        f"| {name} | {r.n} | {r.good} | {r.false_accept_rate:.3f} | {r.false_reject_rate:.3f} | "
        f"{r.error_rate:.3f} | {r.roc_auc:.3f} |"
    )


def _router_row(r: RouterResult, zero_aiq: float) -> str:
    return (
        f"| {r.curve.router} | {r.aiq:.4f} | {format_gain(r.gain, r.aiq - zero_aiq)} | "
        f"{r.aiq_routerbench:.4f} | {r.hull.max_quality:.4f} | {r.hull.cost_at_max_quality:.6g} |"
    )


def _interval_heading() -> str:
    return f" [{LEVEL:.0%} CI]"


def format_gain(gain: GainInterval | None, point: float) -> str:
    """``+0.0065 [-0.0021, +0.0150]`` (``*`` when the interval excludes 0), or the point alone."""
    if gain is None:
        return f"{point:+.4f}"
    mark = " *" if gain.excludes_zero else ""
    return f"{gain.gain:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}]{mark}"


def report_as_dict(report: ReplayReport) -> dict[str, Any]:
    s = report.settings
    return {
        "source": report.source,
        "settings": {
            "routers": list(s.routers),
            "seed": s.seed,
            "train_fraction": 0.7,
            "willingness_to_pay_grid": [_finite_or_str(w) for w in s.grid],
            "budgets": list(s.budgets),
            "error_rates": list(s.error_rates),
            "threshold": s.threshold,
            "bootstrap_resamples": s.bootstrap,
            "bootstrap_level": LEVEL,
        },
        "repairs": list(report.repairs),
        "selections": {name: chosen["record"] for name, chosen in report.selections.items()},
        "deployment": None if report.deployment is None else _deployment_dict(report.deployment),
        "pacing": None if report.pacing is None else pacing_as_dict(report.pacing),
        "pooled": _dataset_dict(report.pooled, pooled_notes(report)),
        "datasets": [_dataset_dict(d, dataset_notes(d)) for d in report.datasets],
    }


def _deployment_dict(deployment: DeployedConfig) -> dict[str, Any]:
    return {
        "config": deployment.path,
        "config_sha256": deployment.sha256,
        "operating_points": [
            {
                "router": p.router,
                "dataset": p.dataset,
                "setting": p.label,
                "cost": p.cost,
                "quality": p.quality,
            }
            for p in deployment.operating_points
        ],
        "skipped": deployment.skipped,
        "missing_backends": list(deployment.missing_backends),
        "unused_models": list(deployment.unused_models),
    }


def _dataset_dict(result: DatasetResult, notes: list[str]) -> dict[str, Any]:
    return {
        "dataset": result.dataset,
        "n_train": result.n_train,
        "n_test": result.n_test,
        "missing_quality": result.missing_quality,
        "aiq_cost_range": list(result.cost_range),
        "routerbench_max_cost": result.routerbench_max_cost,
        "zero_aiq": result.zero_aiq,
        "notes": notes,
        "single_models": _curve_dict(result.single_models),
        "routers": [
            {
                "router": r.curve.router,
                "aiq": r.aiq,
                "aiq_routerbench": r.aiq_routerbench,
                "gain_over_zero": r.aiq - result.zero_aiq,
                "gain_interval": _interval_dict(r.gain),
                "max_quality": r.hull.max_quality,
                "cost_at_max_quality": r.hull.cost_at_max_quality,
                "curve": _curve_dict(r.curve),
                "hull": {"cost": r.hull.cost.tolist(), "quality": r.hull.quality.tolist()},
            }
            for r in result.routers
        ],
        "judges": [
            {"judge": j.name, **{k: _nan_as_none(v) for k, v in asdict(j.rates).items()}}
            for j in result.judges
        ],
    }


def _interval_dict(gain: GainInterval | None) -> dict[str, Any] | None:
    if gain is None:
        return None
    return {
        "low": gain.low,
        "high": gain.high,
        "level": gain.level,
        "resamples": gain.resamples,
        "excludes_zero": gain.excludes_zero,
    }


def _curve_dict(curve: Curve) -> dict[str, Any]:
    return {"labels": list(curve.labels), "cost": curve.cost.tolist(), "quality": curve.quality.tolist()}


def _finite_or_str(value: float) -> float | str:
    return float(value) if math.isfinite(value) else "inf"


def _nan_as_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value
