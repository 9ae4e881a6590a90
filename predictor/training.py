"""Training a quality predictor on an outcome table's train split, ready to save as an artifact.

The rows trained on are the union of every dataset's train split (architecture.md §7: seed 42, 70/30), so
a replay of the same table scores the predictor on prompts it never saw; ``train_fraction=1.0`` trains
on every row (for a production artifact). Prompts are embedded as :func:`embedding_text` of their turns.
Hyperparameters are chosen above this layer, by cross-validation inside the train split
(``routeyard.evaluation.selection``, called by the commands); its record is passed in to be kept in the
manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from tqdm import tqdm

from routeyard.arrays import IndexArray, Vectors
from routeyard.predictor.artifact import FORMAT_VERSION, Manifest
from routeyard.predictor.embedder import Embedder, embedding_text
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.quality_predictor import QualityPredictor
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION, split_by_dataset
from routeyard.validation import validation_problems

_CHUNK = 512  # prompts per embedding call: a progress step, and a bound on memory


@dataclass(frozen=True)
class TrainedPredictor:
    predictor: QualityPredictor
    manifest: Manifest
    train_rows: IndexArray


def embed_prompts(
    embedder: Embedder, prompts: Iterable[tuple[str, ...]], *, progress: bool = False
) -> Vectors:
    """(n, d) embeddings of prompts given as turn tuples, in chunks (with a progress bar if asked)."""
    texts = [embedding_text(turns) for turns in prompts]
    chunks = [texts[start : start + _CHUNK] for start in range(0, len(texts), _CHUNK)]
    bar = tqdm(chunks, desc="embed", unit="chunk", disable=not progress, leave=False)
    parts = [embedder.embed(chunk) for chunk in bar]
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)


def train_rows(
    table: OutcomeTable, *, seed: int = DEFAULT_SEED, train_fraction: float = DEFAULT_TRAIN_FRACTION
) -> tuple[IndexArray, dict[str, Any]]:
    """Row indices of every dataset's train split, ascending, and a record of the split for manifests."""
    splits = split_by_dataset(table, seed=seed, train_fraction=train_fraction)
    rows = np.sort(np.concatenate([s.train for s in splits.values()]))
    record = {
        "seed": seed,
        "train_fraction": train_fraction,
        "train_rows_per_dataset": {name: len(s.train) for name, s in splits.items()},
    }
    return rows, record


def training_data_hash(table: OutcomeTable, rows: IndexArray) -> str:
    """SHA-256 over the rows' sample_ids, the models, qualities, missing mask and costs."""
    digest = hashlib.sha256()
    digest.update("\0".join(table.sample_ids[rows].tolist()).encode())
    digest.update("\0".join(table.models).encode())
    for array in (table.quality[rows], table.missing[rows], table.cost[rows]):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def train_predictor(
    table: OutcomeTable,
    embedder: Embedder,
    kind: str,
    *,
    seed: int = DEFAULT_SEED,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    hyperparameters: Mapping[str, Any] | None = None,
    embeddings: Vectors | None = None,
    selection: Mapping[str, Any] | None = None,
    plans: tuple[dict[str, Any], ...] = (),
    progress: bool = False,
) -> TrainedPredictor:
    """Train a predictor of kind ``kind`` (a name in ``PREDICTOR_KINDS``) on the table's train split.

    Args:
        table: the outcome table (its columns may be models or plans).
        embedder: what embeds the prompts; its identity goes into the manifest.
        kind: the predictor kind.
        seed, train_fraction: the split (``routeyard.predictor.split``).
        hyperparameters: the kind's (its ``parameters`` model: ``k``, ``weighting`` for KNN; ``hidden``,
            ``epochs``, … for the MLP), defaults for the rest.
        embeddings: the prompts already embedded by ``embedder``: (n, d) for every row of the table, or
            (r, d) for its r train rows only, in :func:`train_rows` order; embedded here when ``None``.
        selection: how the hyperparameters were chosen, recorded as the manifest's ``selection``.
        plans: the plan specs of a plan table's columns, recorded as the manifest's ``plans``.
        progress: show a progress bar while embedding.

    Returns:
        The predictor, its manifest and the rows it was trained on.

    Raises:
        ValueError: an unknown kind, hyperparameters the kind refuses (every problem in one line), an
            empty train split, or embeddings of another length.
    """
    predictor_kind = PREDICTOR_KINDS.get(kind)
    parameters = kind_parameters(predictor_kind, hyperparameters or {})
    rows, split = train_rows(table, seed=seed, train_fraction=train_fraction)
    if len(rows) == 0:
        raise ValueError("the train split is empty: the table is too small")
    vectors = _train_vectors(embedder, table, rows, embeddings, progress)
    data = TrainingSet(vectors, table.quality[rows], table.missing[rows], table.cost[rows], table.models)
    predictor = predictor_kind.train(data, parameters)
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        kind=kind,
        embedder_identity=embedder.identity,
        dimension=embedder.dimension,
        models=table.models,
        hyperparameters=predictor.hyperparameters,
        training_data_sha256=training_data_hash(table, rows),
        split=split,
        source=table.source,
        selection=dict(selection or {}),
        plans=plans,
    )
    return TrainedPredictor(predictor, manifest, rows)


def _train_vectors(
    embedder: Embedder, table: OutcomeTable, rows: IndexArray, embeddings: Vectors | None, progress: bool
) -> Vectors:
    """The train rows' embeddings: computed, or taken from the whole table's or the train rows' own."""
    if embeddings is None:
        return embed_prompts(embedder, table.prompts[rows], progress=progress)
    if len(embeddings) == table.n_prompts:
        return embeddings[rows]
    if len(embeddings) == len(rows):
        return embeddings
    raise ValueError(
        f"{len(embeddings)} embeddings: expected one per row ({table.n_prompts}) "
        f"or one per train row ({len(rows)})"
    )


def kind_parameters(kind: PredictorKind, hyperparameters: Mapping[str, Any]) -> BaseModel:
    """The kind's parameters model filled from ``hyperparameters`` (defaults for the rest); raises
    ``ValueError`` naming every problem in one line."""
    try:
        return kind.parameters.model_validate(dict(hyperparameters))
    except ValidationError as exc:
        problems = "; ".join(f"{where or '<root>'}: {message}" for where, message in validation_problems(exc))
        raise ValueError(f"{kind.name} hyperparameters: {problems}") from exc
