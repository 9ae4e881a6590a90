"""What learned components contribute to a replay: predictors' predictions and judges' scores.

A replay scores *recorded* numbers; this module turns trained things into them, for every row of an
outcome table:

- :func:`learned_predictions`: each predictor artifact (checked against the table's models) and each
  predictor kind trained on the table's train split on the fly, over one embedding of every prompt, as
  ``routeyard train`` trains (``routeyard.evaluation.selected_training``: selected by cross-validation
  inside the train split, guarded where it loses to the Zero router);
- :func:`judge_scores`: each learned-judge artifact and, if asked, one trained on the train split,
  scoring the test split's recorded answers.

An artifact trained on other rows than the table's train split may have seen test prompts; it is still
used, and ``warn`` is called with a sentence saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routeyard.arrays import Vectors
from routeyard.evaluation.plan_outcomes import PlanTable
from routeyard.evaluation.replayed_routers import JudgeScores, Predictions
from routeyard.evaluation.selected_training import train_selected
from routeyard.evaluation.selection import DEFAULT_FOLDS, Selection, grid_points
from routeyard.judges.judge_training import held_out_rows, judge_training_hash, score_table, train_judge
from routeyard.judges.kinds.learned import LearnedJudge
from routeyard.predictor.artifact import ArtifactError, Manifest, load_artifact
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.quality_predictor import QualityPredictor
from routeyard.predictor.training import embed_prompts, train_rows, training_data_hash

Warn = Callable[[str], None]


def learned_predictions(
    outcomes: OutcomeTable | PlanTable,
    embedder: Embedder,
    *,
    artifacts: Sequence[Path] = (),
    train: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int,
    warn: Warn,
    progress: bool = False,
    folds: int | None = DEFAULT_FOLDS,
    on_selection: Callable[[str, Selection], None] | None = None,
) -> list[Predictions]:
    """Predictions for every row of ``outcomes`` (an outcome table, or a plan table: then the
    predictions are of its plans) by each artifact in ``artifacts`` and by each predictor kind in
    ``train`` trained on the table's train split (``seed``).

    ``train`` maps a kind to the hyperparameters the user pinned; the others are chosen among the kind's
    grid by ``folds``-fold cross-validation inside the train split (seeded by ``seed``), and
    ``on_selection(name, selection)`` is called with each one's record; ``folds=None`` trains the pinned
    values and the defaults without a search. Names are the kinds, made unique (``knn``,
    ``knn-<artifact dir>``, ``knn-trained``). Raises ``ValueError`` (an unknown kind, an artifact that
    does not load or predicts other models) before anything is trained.
    """
    table = outcomes.table if isinstance(outcomes, PlanTable) else outcomes
    train = train or {}
    for kind, pinned in train.items():  # an unknown kind or a bad value fails before anything is embedded
        grid_points(PREDICTOR_KINDS.get(kind), pinned)
    if not artifacts and not train:
        return []
    embeddings = embed_prompts(embedder, table.prompts, progress=progress)
    out: list[Predictions] = []
    loaded = [(_load_for_table(d, embedder, table, seed, warn), d) for d in artifacts]
    for (predictor, manifest), directory in loaded:
        out.append(_predict(predictor, embeddings, table, _unique(manifest.kind, directory.name, out)))
    for kind, pinned in train.items():
        name = _unique(kind, "trained", out)
        result = train_selected(
            outcomes,
            embedder,
            kind,
            pinned=pinned,
            folds=folds,
            seed=seed,
            embeddings=embeddings,
            progress=progress,
        )
        if on_selection is not None and result.selection is not None:
            on_selection(name, result.selection)
        out.append(_predict(result.trained.predictor, embeddings, table, name))
    return out


def judge_scores(
    table: OutcomeTable,
    embedder: Embedder,
    *,
    artifacts: Sequence[Path] = (),
    train_one: bool = False,
    seed: int,
    warn: Warn,
) -> list[JudgeScores]:
    """Scores of the test split's recorded answers (NaN elsewhere) by each learned-judge artifact
    (``judge=<dir name>``) and, with ``train_one``, a judge trained on the train split
    (``judge=learned``). Raises ``ValueError`` for an artifact that does not load."""
    judges = [(f"judge={d.name}", _load_judge(d, embedder, table, seed, warn)) for d in artifacts]
    if train_one:
        judges.append(("judge=learned", train_judge(table, embedder, seed=seed)))
    test = held_out_rows(table, seed=seed)
    out = []
    for name, judge in judges:
        scores = np.full(table.quality.shape, np.nan)
        scores[test] = score_table(judge, table, test)
        out.append(JudgeScores(scores, name))
    return out


def _load_judge(
    directory: Path, embedder: Embedder, table: OutcomeTable, seed: int, warn: Warn
) -> LearnedJudge:
    judge = LearnedJudge.load(directory, embedder)
    if judge.manifest.training_data_sha256 != judge_training_hash(table, seed=seed):
        warn(_not_trained_on_split(directory))
    return judge


def _load_for_table(
    directory: Path, embedder: Embedder, table: OutcomeTable, seed: int, warn: Warn
) -> tuple[QualityPredictor, Manifest]:
    predictor, manifest = load_artifact(directory, embedder)
    if set(manifest.models) != set(table.models):
        raise ArtifactError(
            f"{directory}: predicts models {list(manifest.models)}, the table has {list(table.models)}"
        )
    rows, _ = train_rows(table, seed=seed)
    if manifest.training_data_sha256 != training_data_hash(table, rows):
        warn(_not_trained_on_split(directory))
    return predictor, manifest


def _not_trained_on_split(directory: Path) -> str:
    return (
        f"{directory} was not trained on this table's train split; its scores may include prompts it has seen"
    )


def _predict(predictor: QualityPredictor, embeddings: Vectors, table: OutcomeTable, name: str) -> Predictions:
    """Predictions for every row, columns in the table's model order."""
    prediction = predictor.predict(embeddings)
    order = np.array([predictor.models.index(model) for model in table.models])
    return Predictions(quality=prediction.quality[:, order], cost=prediction.cost[:, order], name=name)


def _unique(kind: str, qualifier: str, taken: list[Predictions]) -> str:
    used = {p.name for p in taken}
    if kind not in used:
        return kind
    name, i = f"{kind}-{qualifier}", 2
    while name in used:
        name, i = f"{kind}-{qualifier}-{i}", i + 1
    return name
