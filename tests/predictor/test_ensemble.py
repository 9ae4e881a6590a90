import json

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.predictor.artifact import load_artifact, save_artifact
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.kinds import PREDICTOR_KINDS, TrainingSet
from routeyard.predictor.kinds.ensemble import EnsembleParameters, EnsemblePredictor
from routeyard.predictor.training import train_predictor

MODELS = ("small", "large")


def regions(n_per=60, seed=0, dimension=8):
    """Two regions around the first unit vectors: model j is right (quality 1) on region j only."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per)
    points = np.eye(dimension)[labels] + rng.normal(0, 0.1, (2 * n_per, dimension))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    quality = (labels[:, None] == np.arange(2)).astype(float)
    cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02])
    return TrainingSet(points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS), labels


def test_the_ensemble_is_the_weighted_mean_of_its_members_trained_with_their_defaults():
    data, _ = regions()
    ensemble = EnsemblePredictor.train(data, EnsembleParameters(members="knn,cluster", weights="3,1"))
    queries = regions(n_per=5, seed=1)[0].embeddings
    members = [PREDICTOR_KINDS.get(name) for name in ("knn", "cluster")]
    alone = [kind.train(data, kind.parameters()).predict(queries) for kind in members]
    predicted = ensemble.predict(queries)
    np.testing.assert_allclose(predicted.quality, 0.75 * alone[0].quality + 0.25 * alone[1].quality)
    np.testing.assert_allclose(predicted.cost, 0.75 * alone[0].cost + 0.25 * alone[1].cost)


def test_the_default_ensemble_gives_each_region_its_own_best_model():
    data, _ = regions()
    queries, labels = regions(n_per=10, seed=2)
    predicted = EnsemblePredictor.train(data, EnsembleParameters()).predict(queries.embeddings)
    assert (predicted.quality.argmax(axis=1) == labels).all()
    assert ((predicted.quality >= 0.0) & (predicted.quality <= 1.0)).all()


def test_save_and_load_keep_each_member_in_its_own_directory(tmp_path):
    data, _ = regions()
    ensemble = EnsemblePredictor.train(data, EnsembleParameters(members="cluster,logistic,knn"))
    ensemble.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster", "knn", "logistic"]
    hyperparameters = json.loads(json.dumps(ensemble.hyperparameters))  # as a manifest stores them
    loaded = PREDICTOR_KINDS.get("ensemble").load(tmp_path, MODELS, hyperparameters)
    queries = regions(n_per=5, seed=3)[0].embeddings
    np.testing.assert_array_equal(loaded.predict(queries).quality, ensemble.predict(queries).quality)
    np.testing.assert_array_equal(loaded.predict(queries).cost, ensemble.predict(queries).cost)


def test_an_ensemble_artifact_trains_saves_and_loads_like_any_kind(tmp_path):
    """Graded (mt-bench) and missing qualities included, through `routeyard train`'s own path."""
    table = generate_synthetic_table(seed=2, n_prompts=300)
    table.missing[::7, 3] = True
    table.quality[table.missing] = 0.0
    embedder = HashingEmbedder()
    trained = train_predictor(table, embedder, "ensemble", hyperparameters={"members": "cluster,logistic"})
    save_artifact(trained.predictor, trained.manifest, tmp_path / "artifact")
    loaded, manifest = load_artifact(tmp_path / "artifact", embedder)
    assert manifest.kind == "ensemble" and loaded.models == table.models
    vectors = embedder.embed(["a new prompt about algebra", "another about history"])
    np.testing.assert_array_equal(loaded.predict(vectors).quality, trained.predictor.predict(vectors).quality)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"members": "knn,knn"}, "distinct"),
        ({"members": "knn,ensemble"}, "other than 'ensemble'"),
        ({"members": " , "}, "at least one member"),
        ({"members": "knn,cluster", "weights": "1"}, "one finite weight ≥ 0 per member"),
        ({"members": "knn,cluster", "weights": "1,-1"}, "one finite weight ≥ 0 per member"),
        ({"members": "knn,cluster", "weights": "0,0"}, "sum to 0"),
        ({"members": "knn,cluster", "weights": "a,b"}, "must be numbers"),
        ({"k": 3}, "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(parameters, message):
    with pytest.raises(ValueError, match=message):
        EnsembleParameters.model_validate(parameters)


def test_unknown_members_and_unlearnable_data_are_refused():
    data, _ = regions(n_per=5)
    with pytest.raises(ValueError, match=r"unknown predictor kind 'svm'; known: .*cluster"):
        EnsemblePredictor.train(data, EnsembleParameters(members="knn,svm"))
    bad = TrainingSet(data.embeddings, data.quality + 1.0, data.missing, data.cost, MODELS)
    with pytest.raises(ValueError, match="qualities must lie in"):
        EnsemblePredictor.train(bad, EnsembleParameters(members="knn"))


def test_the_registry_lists_the_kind_with_a_small_valid_grid():
    kind = PREDICTOR_KINDS.get("ensemble")
    assert "ensemble" in PREDICTOR_KINDS.names() and kind.parameters is EnsembleParameters
    assert 1 <= len(kind.grid) <= 6
    for point in kind.grid:
        EnsembleParameters.model_validate(point)
