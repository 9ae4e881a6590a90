"""Benchmark: budget pacing on the bundled RouterBench sample (issue 17, item 3).

The sample's pooled test split (seed 42, 70/30 per dataset) is streamed in a seeded random order through
the willingness-to-pay rule on a KNN predictor's predictions (trained on the train split as ``routeyard
train`` trains it: CV selection, Zero guard; embedder ``minilm-static``), with w set by the pacing
controller (``routeyard.policy.pacing``) for targets of 25 %, 50 % and 75 % of always-gpt-4's spend per
prompt on the test split. Goals: final spend within ±5 % of the target; quality ≥ 98 % of the best fixed w
in hindsight that spends no more.

Nothing is tuned on the test split. The gains are the controller's defaults, chosen by reasoning (module
docstring of ``routeyard.policy.pacing``); the w each run starts from is the fixed w that spends the
target's fraction of always-gpt-4 on the *train* split (train rows' predictions, recorded train costs).
``--train-check`` also streams the train split with 5-fold cross-validated predictions (each fold's
predictor trained on the other four, as above), the check the defaults were validated on.

    python -m benchmarks.bench_pacing [--seeds 5] [--train-check] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import describe_machine
from routeyard.arrays import IndexArray, Vectors
from routeyard.cli.embedders import embedder_named
from routeyard.evaluation.learned import learned_predictions
from routeyard.evaluation.pacing import PacingRun, best_fixed_w, model_spend_per_prompt, simulate_pacing
from routeyard.evaluation.points import point_of_choice
from routeyard.evaluation.replayed_routers import Predictions
from routeyard.evaluation.selected_training import train_selected
from routeyard.evaluation.selection import TrainRows, cross_validation_folds
from routeyard.policy.pacing import PacingTuning
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.predictor.split import split_by_dataset
from routeyard.predictor.training import embed_prompts

SAMPLE = Path(__file__).resolve().parents[1] / "routeyard/demo/data/routerbench_0shot_subset.csv.gz"
REFERENCE_MODEL = "gpt-4-1106-preview"
FRACTIONS = (0.25, 0.50, 0.75)
W_MIN, W_MAX = 1e-4, 1e3
SEED = 42


@dataclass(frozen=True)
class Stream:
    """Rows streamed and the predictions routed on, with where each run starts (w per target fraction)."""

    name: str
    rows: IndexArray
    predictions: Predictions
    start_w: dict[float, float]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--seeds", type=int, default=5, help="stream orders (seeds 0..N-1); seed 0 is the headline"
    )
    parser.add_argument(
        "--train-check", action="store_true", help="also stream the train split, CV predictions"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    table = load_routerbench_table(SAMPLE)
    splits = split_by_dataset(table, seed=SEED)
    train = np.sort(np.concatenate([s.train for s in splits.values()]))
    test = np.sort(np.concatenate([s.test for s in splits.values()]))
    embedder = embedder_named("minilm-static")
    (predictions,) = learned_predictions(table, embedder, train={"knn": {}}, seed=SEED, warn=print)
    start_w = {f: _fixed_w_spending(table, predictions, train, f) for f in FRACTIONS}
    streams = [Stream("test", test, predictions, start_w)]
    if args.train_check:
        embeddings = embed_prompts(embedder, table.prompts)
        cv = _cross_validated(table, embeddings, train, embedder)
        streams.insert(
            0, Stream("train (CV)", train, cv, {f: _fixed_w_spending(table, cv, train, f) for f in FRACTIONS})
        )
    results = [
        _run(table, stream, f, seed) for stream in streams for f in FRACTIONS for seed in range(args.seeds)
    ]

    print(f"machine: {describe_machine()}")
    print(
        f"table: {table.n_prompts} prompts × {table.n_models} models; "
        f"test {len(test)}, train {len(train)} rows"
    )
    tuning = PacingTuning(w_min=W_MIN, w_max=W_MAX)
    print(
        f"controller: w in [{W_MIN:g}, {W_MAX:g}], response {tuning.response_seconds:g} prompts, "
        f"kp {tuning.proportional_gain:g}, ki {tuning.integral_gain:g}, deficit cap {tuning.deficit_cap:g}; "
        "start w (fixed w spending the target on the train split): "
        + ", ".join(f"{f:.0%} {w:.3g}" for f, w in start_w.items())
    )
    _print_table(results)
    _print_series([r for r in results if r["split"] == "test" and r["seed"] == 0])
    print(f"total {time.perf_counter() - started:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": describe_machine(), "runs": results}, indent=2))
    return 0


def _run(table: OutcomeTable, stream: Stream, fraction: float, seed: int) -> dict[str, Any]:
    reference = model_spend_per_prompt(table.cost, stream.rows, table.models.index(REFERENCE_MODEL))
    tuning = PacingTuning(
        w_min=W_MIN, w_max=W_MAX, w_initial=float(np.clip(stream.start_w[fraction], W_MIN, W_MAX))
    )
    run = simulate_pacing(
        table.quality,
        table.cost,
        stream.predictions,
        stream.rows,
        target_usd_per_prompt=fraction * reference,
        seed=seed,
        tuning=tuning,
    )
    at_w_max = choose_by_willingness_to_pay(
        stream.predictions.quality[stream.rows], stream.predictions.cost[stream.rows], W_MAX
    )
    max_spend, _ = point_of_choice(table.quality[stream.rows], table.cost[stream.rows], at_w_max)
    return {
        "split": stream.name,
        "fraction": fraction,
        "seed": seed,
        "target_usd_per_prompt": run.target_usd_per_prompt,
        "w_initial": tuning.w_initial,
        "spend_ratio": run.final_spend_ratio,
        "spend_at_w_max_ratio": max_spend / run.target_usd_per_prompt,
        "mean_quality": run.mean_quality,
        "hindsight_w": run.hindsight.willingness_to_pay,
        "hindsight_quality": run.hindsight.quality,
        "hindsight_cost_ratio": run.hindsight.cost / run.target_usd_per_prompt,
        "quality_ratio": run.quality_ratio,
        "series": _series(run),
    }


def _series(run: PacingRun, points: int = 10) -> list[dict[str, float]]:
    """Spend over target so far and w at ``points`` evenly spaced prompts of the stream."""
    marks = np.linspace(len(run.rows) / points, len(run.rows), points).astype(int) - 1
    ratio = run.spend_ratio
    return [
        {"prompt": int(k) + 1, "spend_ratio": float(ratio[k]), "w": float(run.willingness_to_pay[k])}
        for k in marks
    ]


def _fixed_w_spending(
    table: OutcomeTable, predictions: Predictions, rows: IndexArray, fraction: float
) -> float:
    """The best fixed w whose spend on ``rows`` is at most ``fraction`` of always-gpt-4's there."""
    budget = fraction * model_spend_per_prompt(table.cost, rows, table.models.index(REFERENCE_MODEL))
    return best_fixed_w(*_arrays(table, predictions, rows), budget_usd_per_prompt=budget).willingness_to_pay


def _arrays(table: OutcomeTable, p: Predictions, rows: IndexArray) -> tuple[Any, Any, Any, Any]:
    return p.quality[rows], p.cost[rows], table.quality[rows], table.cost[rows]


def _cross_validated(
    table: OutcomeTable, embeddings: Vectors, train: IndexArray, embedder: Any
) -> Predictions:
    """Out-of-fold predictions for the train rows (5 folds; each fold's KNN selected, trained and guarded
    on the other four as ``routeyard train`` does); rows outside ``train`` stay 0."""
    data = TrainRows(table.select(train), embeddings[train])
    quality, cost = np.zeros(table.quality.shape), np.zeros(table.cost.shape)
    for fit, held in cross_validation_folds(data, 5, SEED):
        fold = table.select(train[fit])
        trained = train_selected(
            fold, embedder, "knn", seed=SEED, train_fraction=1.0, embeddings=embeddings[train[fit]]
        )
        predictor = trained.trained.predictor
        order = [predictor.models.index(m) for m in table.models]
        prediction = predictor.predict(embeddings[train[held]])
        quality[train[held]], cost[train[held]] = prediction.quality[:, order], prediction.cost[:, order]
    return Predictions(quality, cost, "knn-cv")


def _print_table(results: list[dict[str, Any]]) -> None:
    print(
        "| split | target (of always-gpt-4) | $/prompt | spend / target (seed 0; min–max over seeds) "
        "| spend at w_max / target | quality | best fixed w (w, quality, spend/target) "
        "| quality ratio (seed 0; min) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for split in dict.fromkeys(r["split"] for r in results):
        for fraction in FRACTIONS:
            runs = [r for r in results if r["split"] == split and r["fraction"] == fraction]
            head, spend, ratio = runs[0], [r["spend_ratio"] for r in runs], [r["quality_ratio"] for r in runs]
            cells = [
                split,
                f"{fraction:.0%}",
                f"{head['target_usd_per_prompt']:.6f}",
                f"{head['spend_ratio']:.3f} ({min(spend):.3f}–{max(spend):.3f})",
                f"{head['spend_at_w_max_ratio']:.3f}",
                f"{head['mean_quality']:.4f}",
                f"{head['hindsight_w']:.3g}, {head['hindsight_quality']:.4f}, "
                f"{head['hindsight_cost_ratio']:.3f}",
                f"{head['quality_ratio']:.4f} ({min(ratio):.4f})",
            ]
            print(f"| {' | '.join(cells)} |")


def _print_series(runs: list[dict[str, Any]]) -> None:
    print("spend / target so far (w) over the test stream, seed 0:")
    for r in runs:
        cells = ", ".join(f"{p['prompt']}: {p['spend_ratio']:.2f} ({p['w']:.3g})" for p in r["series"])
        print(f"  {r['fraction']:.0%}: {cells}")


if __name__ == "__main__":
    raise SystemExit(main())
