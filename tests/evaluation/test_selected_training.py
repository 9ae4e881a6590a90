"""Training as `routeyard train` does: selected by CV, and guarded where CV says it loses to Zero."""

import numpy as np
import pytest

from routeyard.evaluation.selected_training import train_selected
from routeyard.predictor.guard import ZeroGuard
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.training import embed_prompts

MODELS = ("cheap", "dear")


def two_datasets(n=240, seed=0):
    """'signal': the cheap model is right exactly on prompts that say 'easy', so a predictor can route;
    'noise': right or wrong at random (cheap 30 %, dear 90 %), nothing in the prompt tells."""
    rng = np.random.default_rng(seed)
    half = n // 2
    easy = rng.random(half) < 0.5
    words = rng.integers(0, 10**9, n)
    prompts = [f"{'easy' if e else 'hard'} sum number {w}" for e, w in zip(easy, words[:half], strict=True)]
    prompts += [f"riddle {w} {w * 7 % 1000}" for w in words[half:]]
    signal = np.stack([easy.astype(float), np.ones(half)], axis=1)
    noise = np.stack([rng.random(n - half) < 0.3, rng.random(n - half) < 0.9], axis=1).astype(float)
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["signal"] * half + ["noise"] * (n - half)),
        prompts=np.array([(p,) for p in prompts] + [None], dtype=object)[:n],
        models=MODELS,
        quality=np.concatenate([signal, noise]),
        missing=np.zeros((n, 2), dtype=bool),
        cost=np.tile([0.001, 0.03], (n, 1)),
    )


@pytest.fixture(scope="module")
def trained():
    table = two_datasets()
    embeddings = embed_prompts(HashingEmbedder(), table.prompts)
    pinned = {"k": 1, "shrinkage": 0.0}  # one neighbour: noise where the prompt says nothing
    return (
        table,
        embeddings,
        train_selected(table, HashingEmbedder(), "knn", pinned=pinned, folds=3, embeddings=embeddings),
    )


def test_where_cv_says_the_learned_routing_loses_to_zero_that_region_routes_as_zero(trained):
    table, embeddings, result = trained
    assert result.selection is not None and result.selection.fallback_datasets == ("noise",)
    predictor = result.trained.predictor
    assert isinstance(predictor, ZeroGuard)
    noise = table.datasets == "noise"
    predicted = predictor.predict(embeddings[noise]).quality
    assert (predicted == predicted[0]).all()  # one choice for the whole region, as the Zero router
    signal = predictor.predict(embeddings[~noise]).quality
    assert len(np.unique(signal[:, 0])) > 1  # the learned routing is kept where it wins


def test_the_manifest_records_why_a_region_falls_back(trained):
    _, _, result = trained
    guard = result.trained.manifest.selection["zero_guard"]
    assert guard["fallback_datasets"] == ["noise"]
    winner, means = guard["winner_dataset_cv_aiq"], guard["dataset_means_cv_aiq"]
    assert winner["noise"] < means["noise"] and winner["signal"] >= means["signal"]


def test_without_a_search_there_is_no_guard():
    table = two_datasets()
    result = train_selected(table, HashingEmbedder(), "knn", pinned={"k": 1}, folds=None)
    assert result.selection is None and not isinstance(result.trained.predictor, ZeroGuard)
    assert result.trained.manifest.selection == {}
