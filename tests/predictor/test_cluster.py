import numpy as np
import pytest

from routeyard.predictor.kinds import PREDICTOR_KINDS, TrainingSet
from routeyard.predictor.kinds.cluster import ClusterParameters, ClusterPredictor

MODELS = ("small", "large")


def regions(n_per=(30, 30), seed=0, dimension=8):
    """Tight regions around the first unit vectors: model j is right (quality 1) on region j only; costs
    differ by region (region 1's prompts cost twice as much)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(n_per)), n_per)
    points = np.eye(dimension, dtype=np.float32)[labels] + rng.normal(0, 0.05, (len(labels), dimension))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    quality = (labels[:, None] == np.arange(2)).astype(float)
    cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02])
    return points, quality, np.zeros_like(quality, dtype=bool), cost, labels


def train(points, quality, missing, cost, models=MODELS, **parameters):
    data = TrainingSet(points, quality, missing, cost, models)
    return ClusterPredictor.train(data, ClusterParameters(**parameters))


def test_each_region_gets_its_own_best_model_and_cost():
    predictor = train(*regions()[:4], clusters=2, nearest=1, prior_count=0.0)
    queries, *_, labels = regions(n_per=(5, 5), seed=1)
    predicted = predictor.predict(queries)
    assert (predicted.quality.argmax(axis=1) == labels).all()
    np.testing.assert_allclose(predicted.quality, (labels[:, None] == np.arange(2)).astype(float))
    np.testing.assert_allclose(predicted.cost, np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02]))


def test_soft_assignment_over_several_clusters_still_separates_the_regions():
    predictor = train(*regions(n_per=(60, 60))[:4], clusters=8, nearest=3, temperature=0.05)
    queries, *_, labels = regions(n_per=(10, 10), seed=2)
    assert (predictor.predict(queries).quality.argmax(axis=1) == labels).all()


def test_a_small_clusters_means_are_shrunk_toward_the_global_mean_by_the_pseudo_count():
    points, quality, missing, cost, _ = regions(n_per=(4, 16))
    predictor = train(points, quality, missing, cost, clusters=2, nearest=1, prior_count=4.0)
    predicted = predictor.predict(points[:1])
    # model 'small' is right on the 4 prompts of region 0 only: global mean 4 / 20 = 0.2
    assert predicted.quality[0, 0] == pytest.approx((4 * 1.0 + 4 * 0.2) / (4 + 4))
    assert predicted.cost[0, 0] == pytest.approx((4 * 0.001 + 4 * (4 * 0.001 + 16 * 0.002) / 20) / 8)


def test_missing_qualities_are_ignored_and_graded_qualities_are_averaged():
    points, quality, missing, cost, labels = regions()
    quality[:, 0] = np.where(labels == 0, 0.7, 0.2)  # graded, not 0/1
    quality[:, 1] = 0.9
    missing[labels == 1, 1] = True  # stored as 0: must not count
    quality[missing] = 0.0
    predicted = train(points, quality, missing, cost, clusters=2, nearest=1, prior_count=0.0).predict(
        points[[0, -1]]
    )
    np.testing.assert_allclose(predicted.quality, [[0.7, 0.9], [0.2, 0.9]])


def test_the_same_seed_gives_the_same_clusters_and_save_load_gives_identical_predictions(tmp_path):
    points, quality, missing, cost, _ = regions(n_per=(40, 40))
    first = train(points, quality, missing, cost, clusters=6, seed=3)
    again = train(points, quality, missing, cost, clusters=6, seed=3)
    queries = regions(n_per=(3, 3), seed=4)[0]
    np.testing.assert_array_equal(first.predict(queries).quality, again.predict(queries).quality)
    first.save(tmp_path)
    loaded = PREDICTOR_KINDS.get("cluster").load(tmp_path, MODELS, first.hyperparameters)
    np.testing.assert_array_equal(loaded.predict(queries).quality, first.predict(queries).quality)
    np.testing.assert_array_equal(loaded.predict(queries).cost, first.predict(queries).cost)


def test_more_clusters_than_prompts_and_twenty_models_are_handled():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(7, 8)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    quality = rng.uniform(0, 1, (7, 20))
    models = tuple(f"m{j}" for j in range(20))
    predictor = train(points, quality, np.zeros_like(quality, dtype=bool), np.ones((7, 20)), models)
    assert predictor.hyperparameters["clusters_used"] == 7
    predicted = predictor.predict(points)
    assert predicted.quality.shape == predicted.cost.shape == (7, 20)
    assert ((predicted.quality >= 0) & (predicted.quality <= 1)).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, q, m, c: (p, q + 0.5, m, c), "qualities must lie in"),
        (lambda p, q, m, c: (p, q, m, -c), "costs must be finite"),
        (lambda p, q, m, c: (p, q[:, :1], m, c), r"need \(n, m\)"),
        (lambda p, q, m, c: (p * np.nan, q, m, c), "NaN"),
        (lambda p, q, m, c: (p, q, np.ones_like(m), c), "no known quality"),
        (lambda p, q, m, c: (p[:0], q[:0], m[:0], c[:0]), "n ≥ 1"),
    ],
)
def test_data_it_cannot_learn_from_is_refused_with_a_reason(change, message):
    points, quality, missing, cost, _ = regions(n_per=(5, 5))
    with pytest.raises(ValueError, match=message):
        train(*change(points, quality, missing, cost))


def test_the_registry_lists_the_kind_with_a_small_valid_grid():
    kind = PREDICTOR_KINDS.get("cluster")
    assert "cluster" in PREDICTOR_KINDS.names() and kind.parameters is ClusterParameters
    assert 1 <= len(kind.grid) <= 6
    for point in kind.grid:
        ClusterParameters.model_validate(point)
    with pytest.raises(ValueError, match="Extra inputs"):
        ClusterParameters.model_validate({"k": 3})
