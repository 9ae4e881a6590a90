"""``routeyard train-judge``: train the learned judge on an outcome table's recorded answers.

It embeds with the commands' default embedder (``minilm-static``, as the gateway's default ``embedder``,
which is what serves the judge: a judge refuses an embedder of another identity); embedding every
prompt and recorded answer is the long step, shown by a progress bar on a terminal.
"""

from __future__ import annotations

import argparse

import numpy as np

from routeyard.cli.arguments import add_embedder_arguments, add_table_arguments, load_table
from routeyard.cli.embedders import embedder_named, embedding_progress
from routeyard.judges.judge_training import Cells, held_out_rows, judged_cells, train_judge
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import train_rows


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
    total = _texts_to_embed(table, seed=args.seed, train_fraction=args.train_fraction)
    with embedding_progress(embedder, total, description="embed prompts and answers") as shown:
        judge = train_judge(
            table,
            shown,
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


def _texts_to_embed(table: OutcomeTable, *, seed: int, train_fraction: float) -> int:
    """How many texts training embeds: each judged cell's answer and each of their distinct prompts, on
    the train split, and on the test split too when there is one (its error rates)."""
    splits = [train_rows(table, seed=seed, train_fraction=train_fraction)[0]]
    if train_fraction < 1.0:
        splits.append(held_out_rows(table, seed=seed, train_fraction=train_fraction))
    return sum(_cell_texts(judged_cells(table, rows)) for rows in splits)


def _cell_texts(cells: Cells) -> int:
    return len(np.unique(cells.rows)) + len(cells.rows)


def _rates(rates: dict[str, float]) -> str:
    """One line of error rates, from a :class:`routeyard.judges.judge_metrics.JudgeErrorRates` as a dict."""
    return (
        f"false accept {rates['false_accept_rate']:.3f}, false reject {rates['false_reject_rate']:.3f}, "
        f"error {rates['error_rate']:.3f}, ROC AUC {rates['roc_auc']:.3f}"
    )
