import numpy as np
import pytest
import torch

from routeyard.predictor.kinds.mlp import MLP_GRID, MlpParameters, MlpPredictor

MODELS = ("small", "large")


def clusters(n_per=100, seed=0):
    """Two clusters on the unit sphere: 'small' is right on cluster 0, 'large' (10× dearer) on 1."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:2]
    labels = np.repeat([0, 1], n_per)
    points = centres[labels] + rng.normal(0, 0.1, (2 * n_per, 8)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    quality = np.where(labels[:, None] == np.array([0, 1]), 1.0, 0.0)
    cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02]) * rng.uniform(
        0.9, 1.1, (2 * n_per, 1)
    )
    return points, quality, np.zeros_like(quality, dtype=bool), cost, labels


@pytest.fixture(scope="module")
def trained():
    points, quality, missing, cost, _ = clusters()
    return MlpPredictor.train(points, quality, missing, cost, MODELS, hidden=32, epochs=150, seed=0)


def test_the_mlp_learns_which_model_is_right_where_and_what_each_costs(trained):
    queries, _, _, _, labels = clusters(n_per=20, seed=1)
    predicted = trained.predict(queries)
    assert (predicted.quality.argmax(axis=1) == labels).all()
    assert ((predicted.quality >= 0.0) & (predicted.quality <= 1.0)).all()
    expected_cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02])
    np.testing.assert_allclose(predicted.cost, expected_cost, rtol=0.25)


def test_training_stops_early_when_the_held_out_loss_stops_improving():
    """On labels that are pure noise, the held-out loss rises soon: training stops long before 300 epochs."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(200, 8)).astype(np.float32)
    quality = rng.integers(0, 2, (200, 2)).astype(float)
    cost = rng.uniform(0.001, 0.01, (200, 2))
    mlp = MlpPredictor.train(
        points, quality, np.zeros_like(quality, dtype=bool), cost, MODELS, hidden=64, epochs=300, patience=5
    )
    hp = mlp.hyperparameters
    assert hp["epochs_run"] < 300 and hp["best_epoch"] == hp["epochs_run"] - 5
    assert hp["dimension"] == 8 and hp["best_validation_loss"] > 0.0


def test_the_same_seed_gives_the_same_network_and_another_seed_another():
    points, quality, missing, cost, _ = clusters(n_per=30)
    queries = points[:5]

    def fit(seed):
        return MlpPredictor.train(points, quality, missing, cost, MODELS, hidden=16, epochs=5, seed=seed)

    np.testing.assert_array_equal(fit(3).predict(queries).quality, fit(3).predict(queries).quality)
    assert not np.array_equal(fit(3).predict(queries).quality, fit(4).predict(queries).quality)


def test_missing_qualities_do_not_teach_the_network():
    """A model whose quality is missing on cluster 1 keeps what cluster 0 taught it, not the stored 0."""
    points, quality, missing, cost, labels = clusters()
    quality[:, 1] = 1.0
    missing[labels == 1, 1] = True
    quality[missing] = 0.0
    mlp = MlpPredictor.train(points, quality, missing, cost, MODELS, hidden=32, epochs=60, seed=0)
    queries, *_ = clusters(n_per=10, seed=2)
    assert mlp.predict(queries[10:]).quality[:, 1].min() > 0.5


def test_save_and_load_give_identical_predictions(trained, tmp_path):
    trained.save(tmp_path)
    loaded = MlpPredictor.load(tmp_path, MODELS, trained.hyperparameters)
    queries, *_ = clusters(n_per=3, seed=2)
    np.testing.assert_array_equal(loaded.predict(queries).quality, trained.predict(queries).quality)
    np.testing.assert_array_equal(loaded.predict(queries).cost, trained.predict(queries).cost)


def test_bad_shapes_and_settings_are_refused(trained):
    points, quality, missing, cost, _ = clusters(n_per=5)
    with pytest.raises(ValueError, match="labels"):
        MlpPredictor.train(points[:3], quality, missing, cost, MODELS)
    with pytest.raises(ValueError, match="validation_fraction"):
        MlpPredictor.train(points, quality, missing, cost, MODELS, validation_fraction=1.0)
    with pytest.raises(ValueError, match="expected"):
        trained.predict(np.zeros((1, 3), dtype=np.float32))


def test_the_grid_is_at_most_three_distinct_valid_points():
    points = [MlpParameters(**point).model_dump() for point in MLP_GRID]
    assert 1 <= len(points) <= 3 and all(points.count(p) == 1 for p in points)


def test_training_leaves_torchs_thread_count_as_it_found_it():
    points, quality, missing, cost, _ = clusters(n_per=10)
    before = torch.get_num_threads()
    MlpPredictor.train(points, quality, missing, cost, MODELS, hidden=8, epochs=2)
    assert torch.get_num_threads() == before
