"""Hyperparameter selection by cross-validation inside the train split, on a small synthetic table."""

import dataclasses
import json

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.evaluation.selection import (
    TrainRows,
    cross_validation_folds,
    grid_points,
    select_hyperparameters,
)
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.kinds.knn import KNN_GRID, KnnParameters
from routeyard.predictor.split import split_by_dataset
from routeyard.predictor.training import embed_prompts


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=3, n_prompts=600)


@pytest.fixture(scope="module")
def embeddings(table):
    return embed_prompts(HashingEmbedder(), table.prompts)


def split_test_rows(table):
    return np.concatenate([s.test for s in split_by_dataset(table).values()])


def record_of(table, embeddings, **options):
    selection = select_hyperparameters(TrainRows.of_train_split(table, embeddings), "knn", folds=3, **options)
    return json.dumps(selection.record(), sort_keys=True)


def with_rows_changed(table, rows, rng):
    """A copy of ``table`` whose ``rows`` have arbitrary other qualities and costs."""
    changed = table.select(np.arange(table.n_prompts))
    changed.quality[rows] = rng.uniform(0.0, 1.0, changed.quality[rows].shape)
    changed.cost[rows] = rng.uniform(0.0, 0.05, changed.cost[rows].shape)
    return changed


def test_folds_are_stratified_by_dataset_grouped_and_hold_only_train_rows(table, embeddings):
    data = TrainRows.of_train_split(table, embeddings)
    folds = cross_validation_folds(data, 5, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(data.table.n_prompts))  # every train row held out once
    test_ids = set(table.sample_ids[split_test_rows(table)])
    for fit, held_out in folds:
        fit_ids, held_ids = set(data.table.sample_ids[fit]), set(data.table.sample_ids[held_out])
        assert not fit_ids & held_ids and not (fit_ids | held_ids) & test_ids
    for dataset in data.table.dataset_names:
        per_fold = [int((data.table.datasets[h] == dataset).sum()) for _, h in folds]
        assert max(per_fold) - min(per_fold) <= 1, (dataset, per_fold)


def test_test_rows_cannot_change_the_selection_but_train_rows_do(table, embeddings):
    rng = np.random.default_rng(0)
    before = record_of(table, embeddings)
    test = split_test_rows(table)
    poisoned = with_rows_changed(table, test, rng)
    scrambled = embeddings.copy()
    scrambled[test] = scrambled[rng.permutation(test)]
    assert record_of(poisoned, scrambled) == before
    train = np.setdiff1d(np.arange(table.n_prompts), test)
    one_point = {"k": 5, "prior_k": 50, "shrinkage": 0.5}
    changed = with_rows_changed(table, train[::3], rng)
    assert record_of(changed, embeddings, pinned=one_point) != record_of(table, embeddings, pinned=one_point)


def test_the_same_seed_gives_the_same_record_and_another_seed_other_folds(table, embeddings):
    one_point = {"k": 5, "prior_k": 50, "shrinkage": 0.5}
    assert record_of(table, embeddings, seed=5, pinned=one_point) == record_of(
        table, embeddings, seed=5, pinned=one_point
    )
    first, second = (json.loads(record_of(table, embeddings, seed=s, pinned=one_point)) for s in (5, 6))
    assert first["zero"]["fold_aiq"] != second["zero"]["fold_aiq"]


def test_the_record_scores_every_grid_point_and_zero_and_names_the_best_as_winner(table, embeddings):
    selection = select_hyperparameters(TrainRows.of_train_split(table, embeddings), "knn", folds=3, seed=1)
    record = selection.record()
    assert [p["hyperparameters"] for p in record["grid"]] == [
        KnnParameters(**p).model_dump() for p in KNN_GRID
    ]
    for point in [*record["grid"], record["zero"]]:
        assert len(point["fold_aiq"]) == 3 and point["cv_aiq"] == pytest.approx(np.mean(point["fold_aiq"]))
        assert 0.0 < point["cv_aiq"] <= 1.0
    best = max(record["grid"], key=lambda p: p["cv_aiq"])
    assert record["winner"] == best["hyperparameters"] and record["winner_cv_aiq"] == best["cv_aiq"]
    assert record["rows"] == len(np.setdiff1d(np.arange(table.n_prompts), split_test_rows(table)))


def test_pinned_values_override_every_grid_point(table, embeddings):
    data = TrainRows.of_train_split(table, embeddings)
    selection = select_hyperparameters(data, "knn", pinned={"k": 3, "weighting": "distance"}, folds=2)
    assert len(selection.points) == 4  # the grid's two values of k collapse into one
    assert all(
        p.hyperparameters["k"] == 3 and p.hyperparameters["weighting"] == "distance" for p in selection.points
    )
    assert selection.winner["k"] == 3 and selection.record()["pinned"] == {"k": 3, "weighting": "distance"}
    with pytest.raises(ValueError, match="knn hyperparameters: k"):
        select_hyperparameters(data, "knn", pinned={"k": 0}, folds=2)


def test_an_empty_grid_is_the_defaults_with_the_pinned_values():
    no_grid = dataclasses.replace(PREDICTOR_KINDS.get("knn"), grid=())
    assert grid_points(no_grid) == (KnnParameters().model_dump(),)
    assert grid_points(no_grid, {"k": 7}) == (KnnParameters(k=7).model_dump(),)


def test_bad_fold_counts_and_misaligned_embeddings_are_refused(table, embeddings):
    data = TrainRows.of_train_split(table, embeddings)
    with pytest.raises(ValueError, match="folds"):
        cross_validation_folds(data, 1, seed=0)
    with pytest.raises(ValueError, match="embeddings"):
        TrainRows(data.table, data.embeddings[:-1])
    with pytest.raises(ValueError, match="embeddings"):
        TrainRows.of_train_split(table, embeddings[:-1])
