"""The Zero guard: prompts of a region it guards get the region's train means, others the learned
predictions, and the guard survives saving and loading an artifact."""

import dataclasses

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.predictor.artifact import load_artifact, save_artifact
from routeyard.predictor.guard import ZeroGuard, fit_guard
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.training import embed_prompts, train_predictor


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=3, n_prompts=300)


@pytest.fixture(scope="module")
def embeddings(table):
    return embed_prompts(HashingEmbedder(), table.prompts)


def guard_over(table, embeddings, fallback):
    trained = train_predictor(
        table, HashingEmbedder(), "knn", embeddings=embeddings, hyperparameters={"k": 5}
    )
    rows = trained.train_rows
    guard = fit_guard(
        trained.predictor,
        embeddings[rows],
        table.datasets[rows],
        table.quality[rows],
        table.missing[rows],
        table.cost[rows],
        fallback,
    )
    return trained, guard


def test_a_guarded_region_gets_its_train_means_and_the_others_the_learned_predictions(table, embeddings):
    guarded_dataset = table.dataset_names[0]
    trained, guard = guard_over(table, embeddings, [guarded_dataset])
    region = np.array(guard.regions)[guard.region_of(embeddings)]
    inside = region == guarded_dataset
    assert inside.any() and (~inside).any()
    prediction, learned = guard.predict(embeddings), trained.predictor.predict(embeddings)
    np.testing.assert_array_equal(prediction.quality[~inside], learned.quality[~inside])
    rows = trained.train_rows[table.datasets[trained.train_rows] == guarded_dataset]
    np.testing.assert_allclose(prediction.quality[inside][0], table.quality[rows].mean(axis=0))
    np.testing.assert_allclose(prediction.cost[inside][0], table.cost[rows].mean(axis=0))
    # every prompt of the guarded region is routed alike: the same predictions for all of them
    assert (prediction.quality[inside] == prediction.quality[inside][0]).all()


def test_regions_follow_the_datasets_of_the_training_prompts(table, embeddings):
    _, guard = guard_over(table, embeddings, [])
    assigned = np.array(guard.regions)[guard.region_of(embeddings)]
    assert (assigned == table.datasets).mean() > 0.9


def test_a_guard_without_fallback_regions_changes_nothing(table, embeddings):
    trained, guard = guard_over(table, embeddings, [])
    np.testing.assert_array_equal(
        guard.predict(embeddings).quality, trained.predictor.predict(embeddings).quality
    )


def test_the_guard_round_trips_through_an_artifact(table, embeddings, tmp_path):
    trained, guard = guard_over(table, embeddings, [table.dataset_names[-1]])
    save_artifact(guard, trained.manifest, tmp_path / "artifact")
    loaded, _ = load_artifact(tmp_path / "artifact", HashingEmbedder())
    assert isinstance(loaded, ZeroGuard) and loaded.fallback_regions == (table.dataset_names[-1],)
    np.testing.assert_array_equal(loaded.predict(embeddings).quality, guard.predict(embeddings).quality)
    np.testing.assert_array_equal(loaded.predict(embeddings).cost, guard.predict(embeddings).cost)


def test_a_fallback_dataset_the_rows_lack_is_refused(table, embeddings):
    with pytest.raises(ValueError, match="not in the training rows"):
        guard_over(table, embeddings, ["no-such-dataset"])


def test_a_model_never_graded_in_a_region_is_predicted_zero_there_not_nan(table, embeddings):
    first = table.dataset_names[0]
    missing = np.zeros_like(table.missing)
    missing[:, 0] = table.datasets == first
    patched = dataclasses.replace(table, missing=missing, quality=np.where(missing, 0.0, table.quality))
    _, guard = guard_over(patched, embeddings, [first])
    prompt = np.flatnonzero(table.datasets == first)[:1]
    quality = guard.predict(embeddings[prompt]).quality
    assert quality[0, 0] == 0.0 and np.isfinite(quality).all()
