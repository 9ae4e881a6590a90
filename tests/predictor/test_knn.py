import numpy as np
import pytest

from routeyard.predictor.kinds.knn import DEFAULT_PARAMETERS, KNN_GRID, KnnParameters, KnnPredictor

MODELS = ("small", "large")


def clusters(n_per=30, seed=0):
    """Two tight clusters on the unit sphere: 'small' is right on cluster 0, 'large' on cluster 1."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:2]
    labels = np.repeat([0, 1], n_per)
    points = centres[labels] + rng.normal(0, 0.05, (2 * n_per, 8)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    quality = np.where(labels[:, None] == np.array([0, 1]), 1.0, 0.0)
    cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02]) * rng.uniform(
        0.9, 1.1, (2 * n_per, 1)
    )
    return points, quality, cost, labels


def test_the_right_model_wins_on_each_cluster_and_cost_follows_the_cluster():
    points, quality, cost, _labels = clusters()
    knn = KnnPredictor(points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS, k=5)
    queries, _, _, query_labels = clusters(n_per=5, seed=1)
    predicted = knn.predict(queries)
    assert (predicted.quality.argmax(axis=1) == query_labels).all()
    expected_cost = np.where(query_labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02])
    np.testing.assert_allclose(predicted.cost, expected_cost, rtol=0.1)
    assert predicted.quality.shape == predicted.cost.shape == (10, 2)


def test_uniform_votes_average_the_k_nearest_and_distance_votes_favour_the_nearest():
    points = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    quality = np.array([[1.0], [0.0], [0.0]])
    cost = np.array([[1.0], [2.0], [3.0]])
    missing = np.zeros((3, 1), dtype=bool)
    query = np.array([[1, 0]], dtype=np.float32)
    uniform = KnnPredictor(points, quality, missing, cost, ("m",), k=2).predict(query)
    assert uniform.quality[0, 0] == pytest.approx(0.5) and uniform.cost[0, 0] == pytest.approx(1.5)
    weighted = KnnPredictor(points, quality, missing, cost, ("m",), k=2, weighting="distance").predict(query)
    assert weighted.quality[0, 0] > 0.9


def test_missing_neighbours_do_not_vote_and_a_model_nobody_graded_falls_back_to_its_mean():
    points = np.eye(3, dtype=np.float32)
    quality = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    missing = np.array([[False, True], [True, True], [False, False]])
    knn = KnnPredictor(points, quality, missing, np.ones((3, 2)), ("a", "b"), k=2)
    predicted = knn.predict(np.array([[0.7, 0.7, 0.0]], dtype=np.float32))
    assert predicted.quality[0, 0] == pytest.approx(1.0)  # only row 0 graded model a among the two nearest
    assert predicted.quality[0, 1] == pytest.approx(1.0)  # nobody near graded b: its mean over known cells


def test_k_larger_than_the_index_uses_every_row_and_bad_arguments_are_refused():
    points, quality, cost, _ = clusters(n_per=2)
    missing = np.zeros_like(quality, dtype=bool)
    knn = KnnPredictor(points, quality, missing, cost, MODELS, k=50)
    np.testing.assert_allclose(knn.predict(points[:1]).quality, [[0.5, 0.5]])
    with pytest.raises(ValueError, match="k must be"):
        KnnPredictor(points, quality, missing, cost, MODELS, k=0)
    with pytest.raises(ValueError, match="weighting"):
        KnnPredictor(points, quality, missing, cost, MODELS, weighting="cubic")
    with pytest.raises(ValueError, match="expected"):
        knn.predict(np.zeros((1, 3), dtype=np.float32))


def test_save_and_load_give_identical_predictions(tmp_path):
    points, quality, cost, _ = clusters()
    knn = KnnPredictor(points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS, k=7)
    knn.save(tmp_path)
    loaded = KnnPredictor.load(tmp_path, MODELS, knn.hyperparameters)
    queries = clusters(n_per=3, seed=2)[0]
    np.testing.assert_array_equal(loaded.predict(queries).quality, knn.predict(queries).quality)
    np.testing.assert_array_equal(loaded.predict(queries).cost, knn.predict(queries).cost)


def test_shrinkage_pulls_the_near_mean_towards_the_wide_neighbourhood():
    points = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    quality = np.array([[1.0], [1.0], [0.0], [0.0]])
    missing, cost = np.zeros((4, 1), dtype=bool), np.ones((4, 1))
    query = np.array([[1, 0]], dtype=np.float32)
    plain = KnnPredictor(points, quality, missing, cost, ("m",), k=2).predict(query)
    shrunk = KnnPredictor(points, quality, missing, cost, ("m",), k=2, prior_k=4, shrinkage=0.6).predict(
        query
    )
    assert plain.quality[0, 0] == pytest.approx(1.0)
    assert shrunk.quality[0, 0] == pytest.approx(0.4 * 1.0 + 0.6 * 0.5)
    assert shrunk.cost[0, 0] == plain.cost[0, 0]
    with pytest.raises(ValueError, match="shrinkage"):
        KnnPredictor(points, quality, missing, cost, ("m",), shrinkage=1.5)


def test_a_knn_built_with_no_settings_is_the_kind_s_default_and_the_grid_is_valid():
    points, quality, cost, _ = clusters()
    knn = KnnPredictor(points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS)
    hyperparameters = {key: knn.hyperparameters[key] for key in KnnParameters.model_fields}
    assert hyperparameters == KnnParameters().model_dump() == DEFAULT_PARAMETERS
    assert 1 <= len(KNN_GRID) <= 8
    assert len({tuple(sorted(KnnParameters(**point).model_dump().items())) for point in KNN_GRID}) == len(
        KNN_GRID
    )


def test_a_large_batch_gets_the_predictions_its_prompts_get_one_at_a_time():
    points, quality, cost, _ = clusters()
    knn = KnnPredictor(
        points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS, k=5, prior_k=40, shrinkage=0.5
    )
    queries, _, _, _ = clusters(n_per=300, seed=2)  # 600 queries: searched in several bounded chunks
    batch = knn.predict(queries)
    for i in (0, 255, 256, 599):
        one = knn.predict(queries[i : i + 1])
        np.testing.assert_allclose(batch.quality[i], one.quality[0])
        np.testing.assert_allclose(batch.cost[i], one.cost[0])
