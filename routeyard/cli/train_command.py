"""``routeyard train``: train a quality predictor on an outcome table and write its artifact.

By default the kind's hyperparameters are chosen by cross-validation inside the train split
(``routeyard.evaluation.selection``; the record goes into the manifest's ``selection``); the options
given on the command line pin their values; where the cross-validation says the winner loses to the Zero
router on a dataset, the artifact routes that dataset's region as the Zero router (a Zero guard,
``routeyard.evaluation.selected_training``). ``--no-search`` trains the given (or default) values only.
``--plans`` trains on the plan outcome table (``routeyard.evaluation.plan_outcomes``: every model alone
and the agreement pairs picked from the train split) instead of the model table; the artifact's
``models`` are then the plan names and its manifest's ``plans`` their specs.
"""

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
from routeyard.evaluation.plan_outcomes import PlanTable, candidate_plans, plan_table
from routeyard.evaluation.selected_training import train_selected
from routeyard.evaluation.selection import DEFAULT_FOLDS
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import train_rows


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "train",
        help="train a predictor of every model's quality and cost; write an artifact directory",
        description="Train on the table's train split (per dataset, seed 42, 70 %%) and write an artifact; "
        "hyperparameters not given are chosen by cross-validation inside the train split.",
    )
    add_table_arguments(parser)
    parser.add_argument("--predictor", choices=PREDICTOR_KINDS.names(), default="knn", help="predictor kind")
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=DEFAULT_TRAIN_FRACTION,
        help="share of each dataset trained on (1.0 for a production artifact; default 0.7)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split and cross-validation seed")
    parser.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        help=f"cross-validation folds of the hyperparameter search (default {DEFAULT_FOLDS})",
    )
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="train the given (or default) hyperparameters only; no cross-validated search",
    )
    parser.add_argument(
        "--plans",
        action="store_true",
        help="predict plans (every model alone, agreement pairs) instead of models; needs recorded answers",
    )
    add_embedder_arguments(parser)
    parser.add_argument("--out", required=True, help="artifact directory to write (replaced whole)")
    add_predictor_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_predictor_options(args, (args.predictor,))
    outcomes = _outcomes(args)
    result = train_selected(
        outcomes,
        embedder_named(args.embedder, cached=not args.no_cache),
        args.predictor,
        pinned=predictor_parameters(args, args.predictor),
        folds=None if args.no_search else args.folds,
        seed=args.seed,
        train_fraction=args.train_fraction,
        progress=sys.stderr.isatty(),
    )
    trained, manifest = result.trained, result.trained.manifest
    save_artifact(trained.predictor, manifest, args.out)
    if result.selection is not None:
        print(result.selection.summary())
    columns = f"{len(manifest.models)} plans" if manifest.plans else f"{len(manifest.models)} models"
    table = outcomes.table if isinstance(outcomes, PlanTable) else outcomes
    print(
        f"trained {manifest.kind} on {len(trained.train_rows)} of {table.n_prompts} prompts × "
        f"{columns} with {manifest.embedder_identity}; wrote {args.out}"
    )
    return 0


def _outcomes(args: argparse.Namespace) -> OutcomeTable | PlanTable:
    """The table to train on: with ``--plans``, the plan outcomes of the candidate plans."""
    if not args.plans:
        return load_table(args.data, args.format)
    table = load_table(args.data, args.format, with_responses=True)
    rows, _ = train_rows(table, seed=args.seed, train_fraction=args.train_fraction)
    return plan_table(table, candidate_plans(table, rows))
