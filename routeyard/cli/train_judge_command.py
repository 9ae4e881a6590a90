"""``routeyard train-judge``: train the learned judge on an outcome table's recorded answers."""

from __future__ import annotations

import argparse

from routeyard.cli.arguments import add_embedder_arguments, add_table_arguments, load_table
from routeyard.cli.embedders import embedder_named
from routeyard.judges.judge_training import train_judge
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train-judge",
        help="train a learned judge on recorded answers and their quality; write an artifact directory",
        description="Train on the table's train split (per dataset, seed 42, 70 %%); report its errors on "
        "the test split.",
    )
    add_table_arguments(parser)
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=DEFAULT_TRAIN_FRACTION,
        help="share of each dataset trained on (1.0 for a production artifact; default 0.7)",
    )
    parser.add_argument("--regularisation", type=float, default=0.01, help="logistic regression's C")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    add_embedder_arguments(parser)
    parser.add_argument("--out", required=True, help="artifact directory to write (replaced whole)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    table = load_table(args.data, args.format, with_responses=True)
    embedder = embedder_named(args.embedder, cached=not args.no_cache)
    judge = train_judge(
        table,
        embedder,
        seed=args.seed,
        train_fraction=args.train_fraction,
        regularisation=args.regularisation,
    )
    judge.save(args.out)
    manifest = judge.manifest
    print(
        f"trained a learned judge on {manifest.split['judged_answers']} recorded answers of "
        f"{len(manifest.models)} models with {manifest.embedder_identity}; wrote {args.out}"
    )
    rates = manifest.metrics.get("test_split")
    if rates:
        print(
            f"on the test split's {rates['n']} answers at threshold {rates['threshold']:g}: {_rates(rates)}"
        )
        for dataset, dataset_rates in manifest.metrics["test_split_by_dataset"].items():
            print(f"  {dataset} ({dataset_rates['n']} answers): {_rates(dataset_rates)}")
    return 0


def _rates(rates: dict[str, float]) -> str:
    """One line of error rates, from a :class:`routeyard.judges.judge_metrics.JudgeErrorRates` as a dict."""
    return (
        f"false accept {rates['false_accept_rate']:.3f}, false reject {rates['false_reject_rate']:.3f}, "
        f"error {rates['error_rate']:.3f}, ROC AUC {rates['roc_auc']:.3f}"
    )
