"""Training the learned judge on an outcome table's recorded answers, and scoring tables with it.

A training example is one (prompt, model) cell of the table's train split (architecture.md §7: seed 42,
70/30 per dataset) with a recorded answer and a known quality; its label is quality ≥ ½. Every prompt and
every answer is embedded once (through the embedder's cache, when it has one). The classifier is
scikit-learn's L2-regularised logistic regression on standardised features; only its weights are kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from routeyard.arrays import BoolArray, FloatArray, IndexArray
from routeyard.judges.judge_metrics import judge_error_rates
from routeyard.judges.kinds.learned import (
    FORMAT_VERSION,
    KIND,
    JudgeManifest,
    LearnedJudge,
    LogisticWeights,
    judge_features,
)
from routeyard.predictor.embedder import Embedder, embedding_text
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION, split_by_dataset
from routeyard.predictor.training import embed_prompts, train_rows

GOOD_QUALITY = 0.5
_CHUNK = 512


def answer_text(turns: tuple[str, ...]) -> str:
    """A recorded answer's turns as one text, the way replay backends send it."""
    return "\n\n".join(turns)


@dataclass(frozen=True)
class Cells:
    """(k,) row and column indices of table cells that hold a recorded answer and a known quality."""

    rows: IndexArray
    columns: IndexArray


def judged_cells(table: OutcomeTable, rows: IndexArray, *, known_quality: bool = True) -> Cells:
    """The cells of ``rows`` holding a recorded answer (and, if ``known_quality``, a known quality).

    Raises ValueError when the table has no recorded responses.
    """
    if table.responses is None:
        raise ValueError(f"{table.source}: the table has no recorded responses to judge")
    usable = np.array([[cell is not None for cell in row] for row in table.responses[rows]], dtype=bool)
    usable = usable.reshape(len(rows), table.n_models)
    if known_quality:
        usable &= ~table.missing[rows]
    r, c = np.nonzero(usable)
    return Cells(rows=np.asarray(rows[r], dtype=np.intp), columns=np.asarray(c, dtype=np.intp))


def cell_features(
    table: OutcomeTable, cells: Cells, embedder: Embedder, models: tuple[str, ...]
) -> FloatArray:
    """(k, 3d + len(models)) judge features of ``cells``, each distinct prompt embedded once; the
    one-hot follows ``models`` (the judge's), a table model not among them gets zeros."""
    assert table.responses is not None
    unique_rows, position = np.unique(cells.rows, return_inverse=True)
    prompt_vectors = embed_prompts(embedder, table.prompts[unique_rows])[position]
    answers = [answer_text(table.responses[r, c]) for r, c in zip(cells.rows, cells.columns, strict=True)]
    answer_vectors = np.concatenate(
        [embedder.embed(answers[i : i + _CHUNK]) for i in range(0, len(answers), _CHUNK)]
        or [np.zeros((0, embedder.dimension), np.float32)]
    )
    column_of = {model: j for j, model in enumerate(models)}
    columns = [column_of.get(table.models[c]) for c in cells.columns]
    return judge_features(prompt_vectors, answer_vectors, columns, len(models))


def train_judge(
    table: OutcomeTable,
    embedder: Embedder,
    *,
    seed: int = DEFAULT_SEED,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    regularisation: float = 0.01,
) -> LearnedJudge:
    """A learned judge trained on the table's train split (see the module docstring).

    ``regularisation`` is scikit-learn's ``C`` (smaller: stronger). Raises ValueError when the train
    split has no judged answers or only one class of them. With ``train_fraction < 1`` the manifest's
    ``metrics`` hold the judge's error rates on the test split (:func:`held_out_metrics`).
    """
    rows, split = train_rows(table, seed=seed, train_fraction=train_fraction)
    cells = judged_cells(table, rows)
    labels = table.quality[cells.rows, cells.columns] >= GOOD_QUALITY
    if labels.all() or not labels.any():
        raise ValueError("the train split's answers are all good or all bad: nothing to learn a judge from")
    features = cell_features(table, cells, embedder, table.models)
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=regularisation, max_iter=3000).fit((features - mean) / scale, labels)
    weights = LogisticWeights(model.coef_[0].astype(np.float64), float(model.intercept_[0]), mean, scale)
    manifest = JudgeManifest(
        format_version=FORMAT_VERSION,
        kind=KIND,
        embedder_identity=embedder.identity,
        dimension=embedder.dimension,
        models=table.models,
        hyperparameters={"classifier": "logistic", "C": regularisation, "good_quality": GOOD_QUALITY},
        training_data_sha256=_cells_hash(table, cells),
        split={**split, "judged_answers": len(labels)},
        source=table.source,
    )
    judge = LearnedJudge(embedder, weights, manifest)
    if train_fraction < 1.0:
        metrics = held_out_metrics(judge, table, seed=seed, train_fraction=train_fraction)
        judge = LearnedJudge(embedder, weights, JudgeManifest(**{**manifest.__dict__, "metrics": metrics}))
    return judge


def held_out_metrics(
    judge: LearnedJudge, table: OutcomeTable, *, seed: int, train_fraction: float
) -> dict[str, Any]:
    """The judge's error rates at threshold ½ on the test split's judged answers, as the manifest keeps
    them: ``{"test_split": rates of all answers pooled, "test_split_by_dataset": {dataset: rates}}``,
    each rates a :class:`~routeyard.judges.judge_metrics.JudgeErrorRates` as a dict."""
    cells = judged_cells(table, held_out_rows(table, seed=seed, train_fraction=train_fraction))
    scores, good = score_cells(judge, table, cells)
    datasets = table.datasets[cells.rows]
    by_dataset = {
        str(name): asdict(judge_error_rates(scores[datasets == name], good[datasets == name], 0.5))
        for name in np.unique(datasets)
    }
    return {"test_split": asdict(judge_error_rates(scores, good, 0.5)), "test_split_by_dataset": by_dataset}


def held_out_rows(
    table: OutcomeTable, *, seed: int = DEFAULT_SEED, train_fraction: float = DEFAULT_TRAIN_FRACTION
) -> IndexArray:
    """Every dataset's test rows, ascending."""
    splits = split_by_dataset(table, seed=seed, train_fraction=train_fraction)
    return np.sort(np.concatenate([s.test for s in splits.values()]))


def score_cells(judge: LearnedJudge, table: OutcomeTable, cells: Cells) -> tuple[FloatArray, BoolArray]:
    """(k,) the judge's scores of the cells' answers, and (k,) whether each is good (quality ≥ ½)."""
    good = table.quality[cells.rows, cells.columns] >= GOOD_QUALITY
    if len(cells.rows) == 0:
        return np.zeros(0), good
    features = cell_features(table, cells, judge.embedder, judge.manifest.models)
    return judge.weights.probabilities(features), good


def score_table(judge: LearnedJudge, table: OutcomeTable, rows: IndexArray) -> FloatArray:
    """(len(rows), m) the judge's score of every recorded answer of ``rows``; NaN where there is none."""
    cells = judged_cells(table, rows, known_quality=False)
    scores = np.full((len(rows), table.n_models), np.nan)
    values, _ = score_cells(judge, table, cells)
    order = np.argsort(rows)
    scores[order[np.searchsorted(rows, cells.rows, sorter=order)], cells.columns] = values
    return scores


def judge_training_hash(table: OutcomeTable, *, seed: int = DEFAULT_SEED) -> str:
    """The ``training_data_sha256`` of a judge that :func:`train_judge` trained on ``table``'s train
    split (for ``seed``): a loaded judge with another one saw other answers, maybe the test split's."""
    rows, _ = train_rows(table, seed=seed)
    return _cells_hash(table, judged_cells(table, rows))


def _cells_hash(table: OutcomeTable, cells: Cells) -> str:
    assert table.responses is not None
    digest = hashlib.sha256()
    digest.update("\0".join(table.sample_ids[cells.rows].tolist()).encode())
    digest.update(np.ascontiguousarray(cells.columns).tobytes())
    digest.update(np.ascontiguousarray(table.quality[cells.rows, cells.columns]).tobytes())
    digest.update("\0".join(embedding_text(t) for t in table.responses[cells.rows, cells.columns]).encode())
    return digest.hexdigest()
