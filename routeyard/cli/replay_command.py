"""``routeyard replay``: score routers on an outcome table's test split; write report.md/json and curves.png.

Learned routers come from artifacts (``--predictor DIR``, repeatable) or are trained on the table's
train split on the fly (``--train knn,mlp``); every prompt is embedded once (and cached on disk) for
all of them. Their willingness-to-pay curves appear as ``wtp-<name>`` beside the baselines. Learned
judges (``--judge DIR``, ``--train-judge``) score the test split's recorded answers; each gives a
cascade curve ``cascade judge=<name>`` and its measured error rates.

``--plans`` adds plans (every model alone and agreement pairs, chosen on the train split, scored from
the recorded answers): the router ``agreement`` (the Zero router over every plan) and, for each kind of
``--train``, a predictor trained on the plans' train outcomes, ``wtp-plan-<kind>``. Every router's AIQ
gain over the Zero router gets a paired bootstrap interval (``--bootstrap N`` resamples, 0: none).

``--config routeyard.yaml`` replays a gateway config's routers as deployed
(:mod:`routeyard.cli.replay_config`): the table is narrowed to its backends, each router's curve is
named as configured, and the report gives its operating point and the config's SHA-256.

``--pace TARGET`` (repeatable: ``25%`` of the best model's spend, or ``$0.002`` per prompt) streams every
willingness-to-pay router over the test prompts with its w set by a budget-pacing controller
(:mod:`routeyard.cli.replay_pacing`) and reports spend against target and quality against the best fixed w.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from routeyard.cli.arguments import add_embedder_arguments, add_table_arguments, load_table, names
from routeyard.cli.embedders import embedder_named
from routeyard.cli.predictor_options import (
    add_predictor_options,
    check_predictor_options,
    predictor_parameters,
)
from routeyard.cli.replay_config import ReplayedConfig, replayed_config
from routeyard.cli.replay_live import run_live
from routeyard.cli.replay_pacing import pace_target, paced_candidates, paced_replay, print_pacing
from routeyard.evaluation.bootstrap import BOOTSTRAP_RESAMPLES, LEVEL
from routeyard.evaluation.learned import judge_scores, learned_predictions
from routeyard.evaluation.plan_outcomes import PlanTable, candidate_plans, plan_table
from routeyard.evaluation.predictions import load_predictions
from routeyard.evaluation.replay import ReplayReport, replay
from routeyard.evaluation.replayed_routers import (
    DEFAULT_ROUTERS,
    ROUTERS,
    JudgeScores,
    Predictions,
    ReplaySettings,
)
from routeyard.evaluation.report.files import format_gain, write_json, write_markdown
from routeyard.evaluation.report.notes import dataset_notes
from routeyard.evaluation.report.plot import write_curves_png
from routeyard.evaluation.selection import Selection
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED
from routeyard.predictor.training import train_rows


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay an outcome table through routers and write report.md, report.json, curves.png",
        description="Score routers on each dataset's test split (seed 42, 70/30) of an outcome table.",
    )
    add_table_arguments(parser)
    parser.add_argument(
        "--config",
        type=Path,
        help="a gateway config (routeyard.yaml): replay its routers as deployed (w, mapping, excludes, "
        "cascade judge/order/threshold/budget) on the table narrowed to its backends, with its embedder",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="the table holds explored answers (`routeyard export --explored`): write each router's live "
        "AIQ, as the gateway's /v1/stats computes it, to live.json (no other router is replayed)",
    )
    parser.add_argument("--datasets", type=names, help="comma-separated datasets (default: all)")
    parser.add_argument(
        "--routers",
        type=names,
        default=DEFAULT_ROUTERS,
        help=f"comma-separated, from {', '.join(ROUTERS)} (default: {','.join(DEFAULT_ROUTERS)}); "
        "'perfect' is willingness-to-pay routing on the recorded truth",
    )
    parser.add_argument(
        "--plans",
        action="store_true",
        help="add agreement plans (pairs of cheaper models, escalating when their final answers differ; "
        "needs recorded responses): the 'agreement' router, and 'wtp-plan-<kind>' for each --train kind",
    )
    parser.add_argument(
        "--bootstrap",
        type=_resamples,
        default=BOOTSTRAP_RESAMPLES,
        metavar="N",
        help=f"paired bootstrap resamples of the test prompts for the {LEVEL * 100:g} %% interval of every "
        f"router's AIQ gain over Zero (default {BOOTSTRAP_RESAMPLES}; 0: none)",
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
    parser.add_argument(
        "--pace",
        type=pace_target,
        action="append",
        default=[],
        metavar="TARGET",
        help="stream the test split through each willingness-to-pay router with w paced to a spend target: "
        "NN%% of always-<best train model>'s $ per prompt, or $ per prompt ('$0.002'); repeatable",
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="judge acceptance threshold")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split and judge seed")
    parser.add_argument("--out", type=Path, required=True, help="directory for the report")
    add_predictor_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.live:
        return run_live(args.data, args.out)
    judged = bool(args.judge or args.train_judge)
    table = load_table(args.data, args.format, with_responses=judged or args.plans or bool(args.config))
    config = _replayed_config(table, args) if args.config else None
    if config is not None:
        table = config.deployment.table
    selections: dict[str, dict[str, Any]] = {}
    predictions = _learned_predictions(table, args, selections)
    if args.predictions is not None:
        predictions.append(load_predictions(args.predictions, table))
    judge_scores = _judge_scores(table, args) if judged else []
    plans, plan_predictions = _plans(table, args, selections) if args.plans else (None, [])
    deployed = config.deployment.routers if config is not None else ()
    paced = paced_candidates(table, predictions, plans, plan_predictions, deployed) if args.pace else []
    wanted = (
        ("predictions", bool(predictions)),
        ("judged", bool(judge_scores)),
        ("agreement", plans is not None),
        ("plan-predictions", bool(plan_predictions)),
        ("deployed", config is not None and bool(config.deployment.routers)),
    )
    routers = (*args.routers, *(r for r, given in wanted if given and r not in args.routers))
    settings = ReplaySettings(
        routers=routers,
        datasets=args.datasets,
        threshold=args.threshold,
        seed=args.seed,
        bootstrap=args.bootstrap,
    )
    report = replay(
        table,
        settings,
        predictions=tuple(predictions),
        judge_scores=tuple(judge_scores),
        plans=plans,
        plan_predictions=tuple(plan_predictions),
        deployed=deployed,
        progress=sys.stderr.isatty(),
    )
    deployment = config.report(report) if config is not None else None
    pacing = paced_replay(table, paced, args.pace, seed=args.seed, datasets=args.datasets) if paced else None
    report = replace(report, selections=selections, deployment=deployment, pacing=pacing)
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(report, args.out / "report.md")
    write_json(report, args.out / "report.json")
    write_curves_png(report, args.out / "curves.png")
    _print_summary(report, args.out)
    return 0


def _replayed_config(table: OutcomeTable, args: argparse.Namespace) -> ReplayedConfig:
    config = replayed_config(
        args.config, table, seed=args.seed, datasets=args.datasets, cached=not args.no_cache
    )
    for name, why in config.deployment.skipped.items():
        _warn(f"router {name} is not replayed: {why}")
    if config.deployment.missing_backends:
        _warn(f"backends of {args.config} the table lacks: {', '.join(config.deployment.missing_backends)}")
    return config


def _learned_predictions(
    table: OutcomeTable, args: argparse.Namespace, selections: dict[str, dict[str, Any]]
) -> list[Predictions]:
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
        on_selection=lambda name, selection: _note_selection(f"wtp-{name}", selection, selections),
    )


def _plans(
    table: OutcomeTable, args: argparse.Namespace, selections: dict[str, dict[str, Any]]
) -> tuple[PlanTable, list[Predictions]]:
    """The plans chosen on the train split, their outcomes on every row, and the ``--train`` kinds
    trained on the plans' train outcomes."""
    plans = plan_table(table, candidate_plans(table, train_rows(table, seed=args.seed)[0]))
    if not args.train:
        return plans, []
    predictions = learned_predictions(
        plans,
        embedder_named(args.embedder, cached=not args.no_cache),
        train={kind: predictor_parameters(args, kind) for kind in args.train},
        seed=args.seed,
        warn=_warn,
        progress=sys.stderr.isatty(),
        on_selection=lambda name, selection: _note_selection(f"wtp-plan-{name}", selection, selections),
    )
    return plans, predictions


def _resamples(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def _judge_scores(table: OutcomeTable, args: argparse.Namespace) -> list[JudgeScores]:
    embedder = embedder_named(args.embedder, cached=not args.no_cache)
    return judge_scores(
        table, embedder, artifacts=args.judge, train_one=args.train_judge, seed=args.seed, warn=_warn
    )


def _note_selection(router: str, selection: Selection, selections: dict[str, dict[str, Any]]) -> None:
    """Print how ``router``'s hyperparameters were chosen and keep it for the report."""
    selections[router] = {"summary": selection.summary(), "record": selection.record()}
    print(f"{router}: {selection.summary()}")


def _warn(message: str) -> None:
    print(f"routeyard: warning: {message}", file=sys.stderr)


def _print_summary(report: ReplayReport, out: Path) -> None:
    pooled = report.pooled
    print(f"{len(report.datasets)} datasets, {pooled.n_test} test prompts from {report.source}")
    for note in report.repairs:
        print(f"  repaired: {note}")
    resamples = report.settings.bootstrap
    interval = f" [{LEVEL:.0%} paired bootstrap, {resamples} resamples; * excludes 0]" if resamples else ""
    print(f"pooled AIQ (mean over datasets), gain over Zero{interval}:")
    for router in pooled.routers:
        gain = format_gain(router.gain, router.aiq - pooled.zero_aiq)
        print(f"  {router.curve.router:<22} {router.aiq:.4f}  {gain}")
    for result in report.datasets:
        for note in dataset_notes(result):
            print(f"note ({result.dataset}): {note}")
    if report.deployment is not None:
        print(f"config {report.deployment.path} (sha256 {report.deployment.sha256[:12]}…), operating points:")
        for point in report.deployment.operating_points:
            if point.dataset == "pooled":
                where = f"${point.cost:.6g}/prompt  quality {point.quality:.4f}"
                print(f"  {point.router:<22} {point.label:<10} {where}")
    if report.pacing is not None:
        print_pacing(report.pacing)
    for judge in pooled.judges:
        r = judge.rates
        print(
            f"judge {judge.name} on test answers (mean over datasets, threshold {r.threshold:g}): "
            f"false accept {r.false_accept_rate:.3f}, false reject {r.false_reject_rate:.3f}, "
            f"error {r.error_rate:.3f}, ROC AUC {r.roc_auc:.3f}"
        )
    print(f"wrote {out / 'report.md'}, {out / 'report.json'}, {out / 'curves.png'}")
