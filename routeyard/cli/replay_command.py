"""``routeyard replay``: score routers on an outcome table's test split; write report.md/json and curves.png.

Learned routers come from artifacts (``--predictor DIR``, repeatable) or are trained on the table's
train split on the fly (``--train knn,mlp``); every prompt is embedded once (and cached on disk) for
all of them. Their willingness-to-pay curves appear as ``wtp-<name>`` beside the baselines. Learned
judges (``--judge DIR``, ``--train-judge``) score the test split's recorded answers; each gives a
cascade curve ``cascade judge=<name>`` and its measured error rates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from routeyard.cli.arguments import add_embedder_arguments, add_table_arguments, load_table, names
from routeyard.cli.embedders import embedder_named
from routeyard.cli.predictor_options import (
    add_predictor_options,
    check_predictor_options,
    predictor_parameters,
)
from routeyard.evaluation.learned import judge_scores, learned_predictions
from routeyard.evaluation.predictions import load_predictions
from routeyard.evaluation.replay import (
    BASELINES,
    ROUTERS,
    JudgeScores,
    Predictions,
    ReplayReport,
    ReplaySettings,
    replay,
)
from routeyard.evaluation.report.files import write_json, write_markdown
from routeyard.evaluation.report.plot import write_curves_png
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay an outcome table through routers and write report.md, report.json, curves.png",
        description="Score routers on each dataset's test split (seed 42, 70/30) of an outcome table.",
    )
    add_table_arguments(parser)
    parser.add_argument("--datasets", type=names, help="comma-separated datasets (default: all)")
    parser.add_argument(
        "--routers",
        type=names,
        default=BASELINES,
        help=f"comma-separated, from {', '.join(ROUTERS)} (default: {','.join(BASELINES)}); "
        "'perfect' is willingness-to-pay routing on the recorded truth",
    )
    parser.add_argument(
        "--predictor",
        type=Path,
        action="append",
        default=[],
        help="a predictor artifact directory from `routeyard train` (repeatable)",
    )
    parser.add_argument(
        "--train",
        type=names,
        default=(),
        help="comma-separated predictor kinds to train on the train split on the fly "
        f"({', '.join(PREDICTOR_KINDS.names())})",
    )
    add_embedder_arguments(parser)
    parser.add_argument(
        "--predictions",
        type=Path,
        help="long file of sample_id, model, predicted_quality, predicted_cost (a router 'predictions')",
    )
    parser.add_argument(
        "--judge",
        type=Path,
        action="append",
        default=[],
        help="a learned-judge artifact from `routeyard train-judge`: replays a cascade with it (repeatable)",
    )
    parser.add_argument(
        "--train-judge",
        action="store_true",
        help="train a learned judge on the train split's recorded answers and replay a cascade with it",
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="judge acceptance threshold")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split and judge seed")
    parser.add_argument("--out", type=Path, required=True, help="directory for the report")
    add_predictor_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    judged = bool(args.judge or args.train_judge)
    table = load_table(args.data, args.format, with_responses=judged)
    predictions = _learned_predictions(table, args)
    if args.predictions is not None:
        predictions.append(load_predictions(args.predictions, table))
    judge_scores = _judge_scores(table, args) if judged else []
    routers = tuple(args.routers)
    if predictions and "predictions" not in routers:
        routers = (*routers, "predictions")
    if judge_scores and "judged" not in routers:
        routers = (*routers, "judged")
    settings = ReplaySettings(
        routers=routers, datasets=args.datasets, threshold=args.threshold, seed=args.seed
    )
    report = replay(
        table,
        settings,
        predictions=tuple(predictions),
        judge_scores=tuple(judge_scores),
        progress=sys.stderr.isatty(),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(report, args.out / "report.md")
    write_json(report, args.out / "report.json")
    write_curves_png(report, args.out / "curves.png")
    _print_summary(report, args.out)
    return 0


def _learned_predictions(table: OutcomeTable, args: argparse.Namespace) -> list[Predictions]:
    check_predictor_options(args, tuple(args.train))
    if not args.predictor and not args.train:
        return []
    return learned_predictions(
        table,
        embedder_named(args.embedder, cached=not args.no_cache),
        artifacts=args.predictor,
        train={kind: predictor_parameters(args, kind) for kind in args.train},
        seed=args.seed,
        warn=_warn,
        progress=sys.stderr.isatty(),
    )


def _judge_scores(table: OutcomeTable, args: argparse.Namespace) -> list[JudgeScores]:
    embedder = embedder_named(args.embedder, cached=not args.no_cache)
    return judge_scores(
        table, embedder, artifacts=args.judge, train_one=args.train_judge, seed=args.seed, warn=_warn
    )


def _warn(message: str) -> None:
    print(f"routeyard: warning: {message}", file=sys.stderr)


def _print_summary(report: ReplayReport, out: Path) -> None:
    pooled = report.pooled
    print(f"{len(report.datasets)} datasets, {pooled.n_test} test prompts from {report.source}")
    for note in report.repairs:
        print(f"  repaired: {note}")
    print("pooled AIQ (mean over datasets):")
    for router in pooled.routers:
        print(f"  {router.curve.router:<22} {router.aiq:.4f}")
    for judge in pooled.judges:
        r = judge.rates
        print(
            f"judge {judge.name} on test answers (mean over datasets, threshold {r.threshold:g}): "
            f"false accept {r.false_accept_rate:.3f}, false reject {r.false_reject_rate:.3f}, "
            f"error {r.error_rate:.3f}, ROC AUC {r.roc_auc:.3f}"
        )
    print(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'curves.png'}")
