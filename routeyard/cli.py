"""The `routeyard` command line: parse arguments, build objects, call into the layers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.predictions import PredictionsError, load_predictions
from benchmarks.replay import BASELINES, ROUTERS, ReplayReport, ReplaySettings, replay
from benchmarks.report.files import write_json, write_markdown
from benchmarks.report.plot import write_curves_png
from predictor.long_format import load_long_table
from predictor.outcome_table import OutcomeTable, OutcomeTableError
from predictor.routerbench_format import load_routerbench_table


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the process exit code (0 ok, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (OutcomeTableError, PredictionsError, ValueError) as exc:
        print(f"routeyard: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routeyard", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_replay(commands)
    return parser


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay_parser = commands.add_parser(
        "replay",
        help="replay an outcome table through routers and write report.md, report.json, curves.png",
        description="Score routers on each dataset's test split (seed 42, 70/30) of an outcome table.",
    )
    replay_parser.add_argument("--data", type=Path, required=True, help="outcome table file")
    replay_parser.add_argument(
        "--format",
        choices=("routerbench", "long"),
        default="routerbench",
        help="RouterBench wide format (.pkl/.csv/.csv.gz/.parquet) or long format (.csv/.jsonl/.parquet)",
    )
    replay_parser.add_argument("--datasets", type=_names, help="comma-separated datasets (default: all)")
    replay_parser.add_argument(
        "--routers",
        type=_names,
        default=BASELINES,
        help=f"comma-separated, from {', '.join(ROUTERS)} (default: {','.join(BASELINES)}); "
        "'perfect' is willingness-to-pay routing on the recorded truth, "
        "'predictions' on the --predictions file",
    )
    replay_parser.add_argument(
        "--predictions",
        type=Path,
        help="long file of sample_id, model, predicted_quality, predicted_cost "
        "(adds the 'predictions' router)",
    )
    replay_parser.add_argument("--threshold", type=float, default=0.5, help="judge acceptance threshold")
    replay_parser.add_argument("--seed", type=int, default=42, help="split and judge seed")
    replay_parser.add_argument("--out", type=Path, required=True, help="directory for the report")
    replay_parser.set_defaults(run=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    table = _load_table(args.data, args.format)
    routers = tuple(args.routers)
    predictions = None
    if args.predictions is not None:
        predictions = load_predictions(args.predictions, table)
        routers = routers if "predictions" in routers else (*routers, "predictions")
    settings = ReplaySettings(
        routers=routers, datasets=args.datasets, threshold=args.threshold, seed=args.seed
    )
    report = replay(table, settings, predictions=predictions, progress=sys.stderr.isatty())
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(report, args.out / "report.md")
    write_json(report, args.out / "report.json")
    write_curves_png(report, args.out / "curves.png")
    _print_summary(report, args.out)
    return 0


def _load_table(path: Path, data_format: str) -> OutcomeTable:
    if data_format == "long":
        return load_long_table(path)
    return load_routerbench_table(path, with_responses=False)


def _print_summary(report: ReplayReport, out: Path) -> None:
    pooled = report.pooled
    print(f"{len(report.datasets)} datasets, {pooled.n_test} test prompts from {report.source}")
    for note in report.repairs:
        print(f"  repaired: {note}")
    print("pooled AIQ (mean over datasets):")
    for router in pooled.routers:
        print(f"  {router.curve.router:<22} {router.aiq:.4f}")
    print(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'curves.png'}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())
