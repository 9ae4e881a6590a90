"""``routeyard train``: train a quality predictor on an outcome table and write its artifact."""

from __future__ import annotations

import argparse
import sys

from routeyard.cli.arguments import (
    add_embedder_arguments,
    add_knn_arguments,
    add_table_arguments,
    knn_parameters,
    load_table,
)
from routeyard.cli.embedders import embedder_named
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import train_predictor


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train",
        help="train a KNN or MLP predictor of every model's quality and cost; write an artifact directory",
        description="Train on the table's train split (per dataset, seed 42, 70 %%) and write an artifact.",
    )
    add_table_arguments(parser)
    parser.add_argument("--predictor", choices=("knn", "mlp"), default="knn")
    add_knn_arguments(parser)
    parser.add_argument("--hidden", type=int, default=256, help="MLP: hidden width")
    parser.add_argument("--epochs", type=int, default=200, help="MLP: most epochs (early stop on held-out)")
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=DEFAULT_TRAIN_FRACTION,
        help="share of each dataset trained on (1.0 for a production artifact; default 0.7)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split seed")
    add_embedder_arguments(parser)
    parser.add_argument("--out", required=True, help="artifact directory to write (replaced whole)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    table = load_table(args.data, args.format)
    embedder = embedder_named(args.embedder, cached=not args.no_cache)
    params = (
        knn_parameters(args) if args.predictor == "knn" else {"hidden": args.hidden, "epochs": args.epochs}
    )
    trained = train_predictor(
        table,
        embedder,
        args.predictor,
        seed=args.seed,
        train_fraction=args.train_fraction,
        progress=sys.stderr.isatty(),
        **params,
    )
    save_artifact(trained.predictor, trained.manifest, args.out)
    manifest = trained.manifest
    print(
        f"trained {manifest.kind} on {len(trained.train_rows)} of {table.n_prompts} prompts × "
        f"{len(manifest.models)} models with {manifest.embedder_identity}; wrote {args.out}"
    )
    return 0
