"""Benchmark: how long `replay` takes on a full-scale table (36,497 prompts × 11 models).

Generates the seeded synthetic RouterBench table, writes it as a pickle and loads it back the way
`routeyard replay` does (load times are reported, not counted), then times the evaluation with every
baseline (Oracle, Zero, Random), a 64-point willingness-to-pay sweep from given (noisy) predictions and
the full cascade grid (11 budgets × 6 judge error rates), and separately the writing of the report
files. Target (issue 2): evaluation ≤ 2 s wall on 2 cores after loading.

    python -m benchmarks.bench_replay [--repeats 5] [--n 36497]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchmarks.machine import describe_machine
from benchmarks.synthetic import generate_synthetic_table
from routeyard.evaluation.replay import ReplayReport, replay
from routeyard.evaluation.replayed_routers import Predictions, ReplaySettings
from routeyard.evaluation.report.files import write_json, write_markdown
from routeyard.evaluation.report.plot import write_curves_png
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table, write_routerbench_table

T = TypeVar("T")
ROUTERS = ("oracle", "zero", "random", "predictions", "cascade")


def noisy_predictions(table: OutcomeTable, rng: np.random.Generator) -> Predictions:
    """Stand-in predictions: the truth blurred with noise, so choices vary as a real predictor's do."""
    quality = np.clip(0.6 * table.quality + 0.2 + rng.normal(0.0, 0.15, table.quality.shape), 0.0, 1.0)
    cost = table.cost * rng.lognormal(0.0, 0.3, table.cost.shape)
    return Predictions(quality=quality, cost=cost, name="noisy")


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=36_497)
    args = parser.parse_args(argv)

    table, generate_s = timed(lambda: generate_synthetic_table(seed=0, n_prompts=args.n))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.pkl"
        _, write_s = timed(lambda: write_routerbench_table(table, path))
        loaded, load_s = timed(lambda: load_routerbench_table(path, with_responses=False))
        predictions = noisy_predictions(loaded, np.random.default_rng(1))
        settings = ReplaySettings(routers=ROUTERS)
        runs = [timed(lambda: replay(loaded, settings, predictions=predictions)) for _ in range(args.repeats)]
        report = runs[0][0]
        _, report_s = timed(lambda: _write_report(report, Path(tmp)))
    seconds = [s for _, s in runs]
    print(f"machine: {describe_machine()}")
    print(
        f"table: {loaded.n_prompts} prompts × {loaded.n_models} models, {len(loaded.dataset_names)} datasets"
    )
    print(f"generate {generate_s:.2f} s, write pickle {write_s:.2f} s, load pickle {load_s:.2f} s")
    print(
        f"replay ({', '.join(ROUTERS)}; {len(settings.grid)} w values; "
        f"{len(settings.budgets)}×{len(settings.error_rates)} cascade grid), {args.repeats} runs: "
        f"median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s"
    )
    print(f"write report.md + report.json + curves.png: {report_s:.2f} s")
    return 0


def _write_report(report: ReplayReport, out: Path) -> None:
    write_markdown(report, out / "report.md")
    write_json(report, out / "report.json")
    write_curves_png(report, out / "curves.png")


if __name__ == "__main__":
    raise SystemExit(main())
