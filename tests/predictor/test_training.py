import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.split import split_by_dataset
from routeyard.predictor.training import embed_prompts, train_predictor, train_rows, training_data_hash


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=1, n_prompts=300)


def test_training_uses_exactly_every_datasets_train_split(table):
    rows, record = train_rows(table)
    expected = np.sort(np.concatenate([s.train for s in split_by_dataset(table).values()]))
    np.testing.assert_array_equal(rows, expected)
    assert record["train_rows_per_dataset"] == {n: len(s.train) for n, s in split_by_dataset(table).items()}
    trained = train_predictor(table, HashingEmbedder(), "knn", hyperparameters={"k": 3})
    np.testing.assert_array_equal(trained.train_rows, expected)
    assert trained.predictor.hyperparameters["n_indexed"] == len(expected)


def test_the_training_hash_changes_with_any_label(table):
    rows, _ = train_rows(table)
    before = training_data_hash(table, rows)
    assert before == training_data_hash(table, rows)
    changed = table.select(np.arange(table.n_prompts))
    changed.cost[rows[0], 0] += 1e-9
    assert training_data_hash(changed, rows) != before
    assert training_data_hash(table, rows[1:]) != before


def test_unknown_kinds_are_refused(table):
    with pytest.raises(ValueError, match="unknown predictor kind 'svm'"):
        train_predictor(table, HashingEmbedder(), "svm")


def test_hyperparameters_a_kind_does_not_have_or_refuses_are_errors(table):
    with pytest.raises(ValueError, match="knn hyperparameters: hidden: Extra inputs are not permitted"):
        train_predictor(table, HashingEmbedder(), "knn", hyperparameters={"hidden": 16})
    with pytest.raises(
        ValueError, match="knn hyperparameters: shrinkage: Input should be less than or equal"
    ):
        train_predictor(table, HashingEmbedder(), "knn", hyperparameters={"shrinkage": 1.5})


def test_hyperparameters_not_given_take_the_kinds_defaults(table):
    trained = train_predictor(table, HashingEmbedder(), "knn", hyperparameters={"k": 3})
    assert trained.predictor.hyperparameters == {
        "k": 3,
        "weighting": "uniform",
        "prior_k": 400,
        "shrinkage": 0.0,
        "n_indexed": len(trained.train_rows),
    }


def test_embeddings_of_every_row_or_of_the_train_rows_only_train_the_same_predictor(table):
    embedder = HashingEmbedder()
    rows, _ = train_rows(table)
    every = embed_prompts(embedder, table.prompts)
    queries = every[:20]
    from_every = train_predictor(table, embedder, "knn", embeddings=every).predictor.predict(queries)
    from_train = train_predictor(table, embedder, "knn", embeddings=every[rows]).predictor.predict(queries)
    np.testing.assert_array_equal(from_every.quality, from_train.quality)
    with pytest.raises(ValueError, match="expected one per row"):
        train_predictor(table, embedder, "knn", embeddings=every[:7])


def test_the_manifest_records_the_selection_and_plans_it_is_given(table):
    plain = train_predictor(table, HashingEmbedder(), "knn").manifest
    assert plain.selection == {} and plain.plans == ()
    record = {"winner": {"k": 10}, "folds": 5}
    specs = tuple({"kind": "single", "model": model} for model in table.models)
    manifest = train_predictor(table, HashingEmbedder(), "knn", selection=record, plans=specs).manifest
    assert manifest.selection == record and manifest.plans == specs
