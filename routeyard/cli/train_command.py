"""``routeyard train``: train a quality predictor on an outcome table and write its artifact."""

from __future__ import annotations

import argparse
import sys

from routeyard.cli.arguments import add_embedder_arguments, add_table_arguments, load_table
from routeyard.cli.embedders import embedder_named
from routeyard.cli.predictor_options import (
    add_predictor_options,
    check_predictor_options,
    predictor_parameters,
)
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import train_predictor


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train",
        help="train a predictor of every model's quality and cost; write an artifact directory",
        description="Train on the table's train split (per dataset, seed 42, 70 %%) and write an artifact.",
    )
    add_table_arguments(parser)
    parser.add_argument("--predictor", choices=PREDICTOR_KINDS.names(), default="knn", help="predictor kind")
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=DEFAULT_TRAIN_FRACTION,
        help="share of each dataset trained on (1.0 for a production artifact; default 0.7)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    add_embedder_arguments(parser)
    parser.add_argument("--out", required=True, help="artifact directory to write (replaced whole)")
    add_predictor_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_predictor_options(args, (args.predictor,))
    table = load_table(args.data, args.format)
    embedder = embedder_named(args.embedder, cached=not args.no_cache)
    params = predictor_parameters(args, args.predictor)
    trained = train_predictor(
        table,
        embedder,
        args.predictor,
        seed=args.seed,
        train_fraction=args.train_fraction,
        progress=sys.stderr.isatty(),
        hyperparameters=params,
    )
    save_artifact(trained.predictor, trained.manifest, args.out)
    manifest = trained.manifest
    print(
        f"trained {manifest.kind} on {len(trained.train_rows)} of {table.n_prompts} prompts × "
        f"{len(manifest.models)} models with {manifest.embedder_identity}; wrote {args.out}"
    )
    return 0
