"""Training as ``routeyard train`` does it: select, train the winner, guard where it loses to Zero.

1. The kind's hyperparameters are chosen by cross-validation inside the train split
   (:mod:`routeyard.evaluation.selection`), with the user's pinned values laid over every grid point;
   ``folds=None`` skips the search and trains the pinned values (defaults for the rest).
2. The winner is trained on the whole train split (``routeyard.predictor.training.train_predictor``); the
   manifest records the selection.
3. Where the same cross-validation says routing on the winner's predictions loses, on a dataset, to
   routing on that dataset's train means (how the Zero router routes), the predictor is wrapped in a
   Zero guard (``routeyard.predictor.guard``) that routes that dataset's region as the Zero router.

The replay's ``--train``, ``routeyard train`` and the demo all train through :func:`train_selected`, so
what is replayed is what is deployed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routeyard.arrays import Vectors
from routeyard.evaluation.plan_outcomes import PlanTable
from routeyard.evaluation.selection import DEFAULT_FOLDS, Selection, TrainRows, select_hyperparameters
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.guard import fit_guard
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import TrainedPredictor, embed_prompts, train_predictor, train_rows


@dataclass(frozen=True)
class SelectedTraining:
    """A trained predictor (wrapped in a Zero guard where one is needed) and its selection, if searched."""

    trained: TrainedPredictor
    selection: Selection | None


def train_selected(
    outcomes: OutcomeTable | PlanTable,
    embedder: Embedder,
    kind: str,
    *,
    pinned: Mapping[str, Any] | None = None,
    folds: int | None = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    embeddings: Vectors | None = None,
    progress: bool = False,
) -> SelectedTraining:
    """Select, train and guard a predictor of ``kind`` on the train split of ``outcomes`` (module docstring).

    Args:
        outcomes: an outcome table, or a plan table (its columns are plans; its models alone set the cost
            range and the Zero router, and its plan specs go into the manifest).
        embedder: embeds the prompts (its identity goes into the manifest).
        kind: a name in ``PREDICTOR_KINDS``.
        pinned: hyperparameters the user fixed.
        folds: cross-validation folds, or ``None`` for no search (and no guard).
        seed, train_fraction: the split, and the folds' seed.
        embeddings: (n, d) every row's prompt already embedded by ``embedder``; embedded here otherwise.
        progress: progress bars on stderr.

    Raises:
        ValueError: an unknown kind, pinned values it refuses, a bad fold count or an empty train split.
    """
    table = outcomes.table if isinstance(outcomes, PlanTable) else outcomes
    rows, _ = train_rows(table, seed=seed, train_fraction=train_fraction)
    vectors = (
        embed_prompts(embedder, table.prompts[rows], progress=progress)
        if embeddings is None
        else embeddings[rows]
    )
    selection, hyperparameters = None, dict(pinned or {})
    if folds is not None:
        base = outcomes.base_models if isinstance(outcomes, PlanTable) else None
        data = TrainRows(table.select(rows), vectors, base)
        selection = select_hyperparameters(
            data, kind, pinned=pinned, folds=folds, seed=seed, progress=progress
        )
        hyperparameters = selection.winner
    trained = train_predictor(
        table,
        embedder,
        kind,
        seed=seed,
        train_fraction=train_fraction,
        hyperparameters=hyperparameters,
        embeddings=vectors,
        selection=None if selection is None else selection.record(),
        plans=tuple(p.spec() for p in outcomes.plans) if isinstance(outcomes, PlanTable) else (),
    )
    if selection is not None and selection.fallback_datasets:
        guard = fit_guard(
            trained.predictor,
            vectors,
            table.datasets[rows],
            table.quality[rows],
            table.missing[rows],
            table.cost[rows],
            selection.fallback_datasets,
        )
        trained = dataclasses.replace(trained, predictor=guard)
    return SelectedTraining(trained, selection)
