"""Model selection: a predictor kind's hyperparameters chosen by cross-validation inside the train split.

The test split scores routers; it must never choose them. Selection therefore receives only
:class:`TrainRows` (a table already cut down to the train rows, and their embeddings) and cannot read a
test row. On those rows:

1. The rows are dealt into ``folds`` folds by scikit-learn's ``StratifiedGroupKFold`` (shuffled, seeded):
   grouped by ``sample_id`` (a prompt is never on both sides), stratified by dataset (each fold holds
   about the same share of every dataset). A dataset with fewer train rows than folds is absent from
   some held-out folds; those folds average over the datasets they hold.
2. Every point of the kind's grid (``PredictorKind.grid``: partial hyperparameters, the rest default;
   an empty grid is the defaults alone), with the user's pinned values laid over it, is trained on k − 1
   folds and predicts the held-out fold.
3. A fold's score is the AIQ of the willingness-to-pay curve (the replay's own sweep, hull and AIQ,
   architecture.md §7) on each dataset of the held-out rows, over that dataset's range [cheapest,
   dearest single model's mean cost] on those rows, averaged over datasets (unweighted). A point's CV
   score is the mean over folds. The Zero router (the hull of the single models) is scored on the same
   folds, so a record can say whether the winner beats always picking one model.
4. The winner is the point of highest CV score; ties go to the earlier grid point.

Everything is pure (no I/O) and deterministic for a seed; embeddings are computed once by the caller.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from routeyard.arrays import BoolArray, FloatArray, IndexArray, Vectors
from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.hull import nondecreasing_hull
from routeyard.evaluation.points import Curve, single_model_curve
from routeyard.evaluation.sweep import willingness_to_pay_curve
from routeyard.policy.willingness_to_pay import log_spaced_grid
from routeyard.predictor.guard import mean_outcomes
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import DEFAULT_SEED, DEFAULT_TRAIN_FRACTION
from routeyard.predictor.training import kind_parameters, train_rows

DEFAULT_FOLDS = 5
METHOD = "StratifiedGroupKFold inside the train split (groups: sample_id, strata: dataset)"
METRIC = (
    "AIQ of the willingness-to-pay hull per dataset of the held-out rows over [cheapest, dearest single "
    "model's mean cost] there; mean over datasets, then over folds"
)

GUARD_RULE = (
    "a dataset routes as the Zero router (on its train means) where the winner's CV AIQ there is below "
    "that of routing on each fit fold's per-dataset mean quality and cost"
)


@dataclass(frozen=True)
class TrainRows:
    """All that selection may read: ``table`` holds only train rows, ``embeddings`` (n, d) are theirs; for
    a plan table, ``base_models`` names its columns that are models alone."""

    table: OutcomeTable
    embeddings: Vectors
    base_models: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.embeddings) != self.table.n_prompts:
            raise ValueError(f"{len(self.embeddings)} embeddings for {self.table.n_prompts} train rows")
        absent = set(self.base_models or ()) - set(self.table.models)
        if absent:
            raise ValueError(f"base models {sorted(absent)} are not columns of the table")

    def base_columns(self) -> list[int]:
        """The columns of the single models that set the AIQ cost range and the Zero router: every
        column, or a plan table's ``base_models`` (the models alone)."""
        if self.base_models is None:
            return list(range(self.table.n_models))
        return [self.table.models.index(model) for model in self.base_models]

    @classmethod
    def of_train_split(
        cls,
        table: OutcomeTable,
        embeddings: Vectors,
        *,
        seed: int = DEFAULT_SEED,
        train_fraction: float = DEFAULT_TRAIN_FRACTION,
        base_models: tuple[str, ...] | None = None,
    ) -> TrainRows:
        """The train split (``routeyard.predictor.training.train_rows``) of ``table`` and of its (n, d)
        ``embeddings`` (one per row of the whole table). Raises ``ValueError`` on a length mismatch."""
        if len(embeddings) != table.n_prompts:
            raise ValueError(f"{len(embeddings)} embeddings for a table of {table.n_prompts} rows")
        rows, _ = train_rows(table, seed=seed, train_fraction=train_fraction)
        return cls(table.select(rows), embeddings[rows], base_models)


@dataclass(frozen=True)
class PointScore:
    """One grid point: its full ``hyperparameters`` and its AIQ on each held-out fold."""

    hyperparameters: dict[str, Any]
    fold_dataset_aiq: tuple[dict[str, float], ...]

    @property
    def fold_aiq(self) -> tuple[float, ...]:
        """Per fold, the mean over its datasets."""
        return tuple(float(np.mean(list(fold.values()))) for fold in self.fold_dataset_aiq)

    @property
    def cv_aiq(self) -> float:
        return float(np.mean(self.fold_aiq))

    def dataset_cv_aiq(self) -> dict[str, float]:
        """Per dataset, the mean over the folds that hold it."""
        names = sorted({name for fold in self.fold_dataset_aiq for name in fold})
        return {n: float(np.mean([f[n] for f in self.fold_dataset_aiq if n in f])) for n in names}


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select_hyperparameters`; :meth:`record` is what a manifest stores."""

    kind: str
    folds: int
    seed: int
    n_rows: int
    pinned: dict[str, Any]
    points: tuple[PointScore, ...]
    zero_fold_aiq: tuple[float, ...]
    winner_index: int
    dataset_means: PointScore | None = None

    @property
    def fallback_datasets(self) -> tuple[str, ...]:
        """The datasets where routing on the winner's predictions scored below routing on the dataset's
        train means (how the Zero router routes) in cross-validation: a Zero guard routes them as Zero."""
        if self.dataset_means is None:
            return ()
        learned, means = self.points[self.winner_index].dataset_cv_aiq(), self.dataset_means.dataset_cv_aiq()
        return tuple(name for name in learned if learned[name] < means[name])

    @property
    def winner(self) -> dict[str, Any]:
        """The winning point's full hyperparameters (pinned values included)."""
        return dict(self.points[self.winner_index].hyperparameters)

    @property
    def zero_cv_aiq(self) -> float:
        return float(np.mean(self.zero_fold_aiq))

    def record(self) -> dict[str, Any]:
        """A JSON-ready dict: method, metric, folds, seed, rows, pinned values, every grid point's
        hyperparameters with its CV and per-fold AIQ, the Zero router's, and the winner."""
        return {
            "kind": self.kind,
            "method": METHOD,
            "metric": METRIC,
            "folds": self.folds,
            "seed": self.seed,
            "rows": self.n_rows,
            "pinned": dict(self.pinned),
            "grid": [
                {"hyperparameters": p.hyperparameters, "cv_aiq": p.cv_aiq, "fold_aiq": list(p.fold_aiq)}
                for p in self.points
            ],
            "zero": {"cv_aiq": self.zero_cv_aiq, "fold_aiq": list(self.zero_fold_aiq)},
            "winner": self.winner,
            "winner_cv_aiq": self.points[self.winner_index].cv_aiq,
            "zero_guard": self._guard_record(),
        }

    def summary(self) -> str:
        """One line: what won, its CV AIQ and the Zero router's, over how many points and folds."""
        varying = [
            name for name in self.winner if len({repr(p.hyperparameters[name]) for p in self.points}) > 1
        ]
        fixed = "the given hyperparameters" if self.pinned else "the defaults"
        chosen = ", ".join(f"{name}={self.winner[name]}" for name in varying) or fixed
        best = self.points[self.winner_index]
        guarded = self.fallback_datasets
        guard = f"; routes {', '.join(guarded)} as the Zero router (Zero guard)" if guarded else ""
        return (
            f"selected {chosen} among {len(self.points)} points by {self.folds}-fold cross-validation "
            f"inside the train split: CV AIQ {best.cv_aiq:.4f} (Zero router {self.zero_cv_aiq:.4f}){guard}"
        )

    def _guard_record(self) -> dict[str, Any]:
        if self.dataset_means is None:
            return {}
        return {
            "rule": GUARD_RULE,
            "winner_dataset_cv_aiq": self.points[self.winner_index].dataset_cv_aiq(),
            "dataset_means_cv_aiq": self.dataset_means.dataset_cv_aiq(),
            "fallback_datasets": list(self.fallback_datasets),
        }


def grid_points(kind: PredictorKind, pinned: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], ...]:
    """The kind's grid with ``pinned`` laid over every point, each as full hyperparameters (defaults
    filled in), repeats dropped, in grid order; the defaults (plus ``pinned``) for an empty grid.
    Raises ``ValueError`` for pinned values or grid points the kind refuses."""
    partials = kind.grid or ({},)
    points: list[dict[str, Any]] = []
    for partial in partials:
        point = kind_parameters(kind, {**partial, **(pinned or {})}).model_dump()
        if point not in points:
            points.append(point)
    return tuple(points)


def cross_validation_folds(data: TrainRows, folds: int, seed: int) -> list[tuple[IndexArray, IndexArray]]:
    """``folds`` pairs (fit rows, held-out rows) of indices into ``data.table``, grouped by sample_id and
    stratified by dataset (see the module docstring). Raises ``ValueError`` for ``folds < 2`` or more
    folds than rows."""
    if folds < 2 or folds > data.table.n_prompts:
        raise ValueError(f"need 2 ≤ folds ≤ {data.table.n_prompts} train rows, got {folds}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    placeholder = np.zeros((data.table.n_prompts, 1))
    with warnings.catch_warnings():  # a dataset smaller than the fold count: documented above
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        pairs = list(splitter.split(placeholder, data.table.datasets, groups=data.table.sample_ids))
    return [(np.asarray(fit, dtype=np.intp), np.asarray(held, dtype=np.intp)) for fit, held in pairs]


def select_hyperparameters(
    data: TrainRows,
    kind: str,
    *,
    pinned: Mapping[str, Any] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> Selection:
    """Choose ``kind``'s hyperparameters by cross-validation on ``data`` (module docstring).

    Args:
        data: the train rows and their embeddings; nothing else is read.
        kind: a name in ``PREDICTOR_KINDS``.
        pinned: hyperparameters the user fixed; they override every grid point.
        folds: how many folds (≥ 2).
        seed: the fold shuffle's seed; the same data and seed give the same :class:`Selection`.
        progress: show a progress bar (stderr) over the (fold, grid point) trainings.

    Returns:
        A :class:`Selection`: every point's per-fold and mean AIQ, the Zero router's, the winner.

    Raises:
        ValueError: an unknown kind, pinned values the kind refuses, a bad fold count, or data a
            predictor cannot learn from.
    """
    predictor_kind = PREDICTOR_KINDS.get(kind)
    points = grid_points(predictor_kind, pinned)
    pairs = cross_validation_folds(data, folds, seed)
    scores: list[list[dict[str, float]]] = [[] for _ in points]
    steps = [(p, f) for f in range(folds) for p in range(len(points))]
    for p, f in tqdm(steps, desc=f"select {kind}", unit="fit", disable=not progress, leave=False):
        scores[p].append(_fold_aiq(data, predictor_kind, points[p], *pairs[f]))
    results = tuple(PointScore(point, tuple(row)) for point, row in zip(points, scores, strict=True))
    return Selection(
        kind=kind,
        folds=folds,
        seed=seed,
        n_rows=data.table.n_prompts,
        pinned=dict(pinned or {}),
        points=results,
        zero_fold_aiq=tuple(_zero_aiq(data, held) for _, held in pairs),
        winner_index=int(np.argmax([r.cv_aiq for r in results])),  # the first of the best
        dataset_means=PointScore({}, tuple(_dataset_means_aiq(data, fit, held) for fit, held in pairs)),
    )


def _fold_aiq(
    data: TrainRows, kind: PredictorKind, point: dict[str, Any], fit: IndexArray, held: IndexArray
) -> dict[str, float]:
    """Train ``point`` on the ``fit`` rows; per dataset, the AIQ of its predictions on the ``held`` rows."""
    predictor = kind.train(_training_set(data, fit), kind_parameters(kind, point))
    prediction = predictor.predict(data.embeddings[held])
    order = np.array([predictor.models.index(model) for model in data.table.models])
    return _held_out_aiq(data, held, prediction.quality[:, order], prediction.cost[:, order])


def _dataset_means_aiq(data: TrainRows, fit: IndexArray, held: IndexArray) -> dict[str, float]:
    """Per dataset of the ``held`` rows, the AIQ of routing them on the ``fit`` rows' mean quality (known
    cells only) and cost of that dataset (of every fit row when the fit rows lack it)."""
    table = data.table
    quality, cost = np.zeros((len(held), table.n_models)), np.zeros((len(held), table.n_models))
    for _, position in _dataset_rows(table, held):
        same = fit[table.datasets[fit] == table.datasets[held][position][0]]
        rows = same if len(same) else fit
        quality[position], cost[position] = mean_outcomes(
            table.quality[rows], table.missing[rows], table.cost[rows]
        )
    return _held_out_aiq(data, held, quality, cost)


def _training_set(data: TrainRows, rows: IndexArray) -> TrainingSet:
    table = data.table
    return TrainingSet(
        data.embeddings[rows], table.quality[rows], table.missing[rows], table.cost[rows], table.models
    )


def _held_out_aiq(
    data: TrainRows, held: IndexArray, predicted_quality: FloatArray, predicted_cost: FloatArray
) -> dict[str, float]:
    """Per dataset of the held-out rows, the willingness-to-pay router's AIQ on them."""
    grid, table = log_spaced_grid(), data.table
    scores = {}
    for rows, position in _dataset_rows(table, held):
        quality, cost = table.quality[rows], table.cost[rows]
        curve = willingness_to_pay_curve(
            "cv", predicted_quality[position], predicted_cost[position], quality, cost, grid
        )
        scores[str(table.datasets[rows[0]])] = _aiq_on_range(curve, _single_models(data, rows))
    return scores


def _zero_aiq(data: TrainRows, held: IndexArray) -> float:
    """Mean over the held-out rows' datasets of the Zero router's AIQ (the single models' hull)."""
    scores = []
    for rows, _ in _dataset_rows(data.table, held):
        models = _single_models(data, rows)
        scores.append(_aiq_on_range(models, models))
    return float(np.mean(scores))


def _single_models(data: TrainRows, rows: IndexArray) -> Curve:
    """The single models' points on ``rows``: the base models' columns of a plan table."""
    columns = data.base_columns()
    table = data.table
    return single_model_curve(
        table.quality[rows][:, columns], table.cost[rows][:, columns], tuple(table.models[j] for j in columns)
    )


def _aiq_on_range(curve: Curve, single_models: Curve) -> float:
    """AIQ of ``curve``'s hull over [cheapest, dearest] of the single models' mean costs."""
    hull = nondecreasing_hull(curve.cost, curve.quality)
    return aiq(hull, float(single_models.cost.min()), float(single_models.cost.max()))


def _dataset_rows(table: OutcomeTable, held: IndexArray) -> Iterator[tuple[IndexArray, BoolArray]]:
    """Per dataset of ``held`` (sorted by name): its rows of the table and their mask within ``held``."""
    datasets = table.datasets[held]
    for name in np.unique(datasets):
        position = datasets == name
        yield held[position], position
