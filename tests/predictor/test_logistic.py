import numpy as np
import pytest

from routeyard.predictor.kinds import PREDICTOR_KINDS, TrainingSet
from routeyard.predictor.kinds.logistic import LogisticParameters, LogisticPredictor

MODELS = ("small", "large")


def regions(n_per=100, seed=0, dimension=8):
    """Two regions around the first unit vectors: model j is right (quality 1) on region j only; region
    1's prompts cost twice as much as region 0's, with ±10 % noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per)
    points = np.eye(dimension)[labels] + rng.normal(0, 0.1, (2 * n_per, dimension))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    quality = (labels[:, None] == np.arange(2)).astype(float)
    cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02]) * rng.uniform(
        0.9, 1.1, (2 * n_per, 1)
    )
    return points, quality, np.zeros_like(quality, dtype=bool), cost, labels


def train(points, quality, missing, cost, models=MODELS, **parameters):
    data = TrainingSet(points, quality, missing, cost, models)
    return LogisticPredictor.train(data, LogisticParameters(**parameters))


@pytest.mark.parametrize("calibration", ["platt", "isotonic", "none"])
def test_each_region_gets_its_own_best_model_and_cost(calibration):
    predictor = train(*regions()[:4], calibration=calibration)
    queries, *_, labels = regions(n_per=20, seed=1)
    predicted = predictor.predict(queries)
    assert (predicted.quality.argmax(axis=1) == labels).all()
    assert ((predicted.quality >= 0.0) & (predicted.quality <= 1.0)).all()
    expected_cost = np.where(labels[:, None] == 0, [0.001, 0.01], [0.002, 0.02])
    np.testing.assert_allclose(predicted.cost, expected_cost, rtol=0.2)


def test_graded_qualities_are_predicted_on_their_scale():
    """A model scoring 0.8 on one region and 0.3 on the other (judge scores, not 0/1) is predicted
    close to those values once calibrated: on average over each region, and within 0.1 everywhere."""
    points, _, missing, cost, labels = regions(n_per=200)
    quality = np.stack([np.where(labels == 0, 0.8, 0.3), np.full(len(labels), 0.5)], axis=1)
    predicted = train(points, quality, missing, cost).predict(regions(n_per=20, seed=2)[0])
    assert predicted.quality[:20, 0].mean() == pytest.approx(0.8, abs=0.03)
    assert predicted.quality[20:, 0].mean() == pytest.approx(0.3, abs=0.03)
    np.testing.assert_allclose(predicted.quality[:, 0], np.repeat([0.8, 0.3], 20), atol=0.1)
    np.testing.assert_allclose(predicted.quality[:, 1], 0.5, atol=0.05)


def test_missing_qualities_do_not_teach_the_classifier():
    """'large' is unknown on half of region 0, stored as 0 there: if those zeros counted, region 0
    would look like a coin flip for it."""
    points, quality, missing, cost, labels = regions()
    quality[:, 1] = np.where(labels == 0, 1.0, 0.0)
    missing[np.flatnonzero(labels == 0)[::2], 1] = True
    quality[missing] = 0.0
    predicted = train(points, quality, missing, cost).predict(regions(n_per=20, seed=3)[0])
    assert predicted.quality[:20, 1].min() > 0.8 and predicted.quality[20:, 1].max() < 0.2


def test_a_model_with_one_constant_quality_is_predicted_as_that_constant():
    points, quality, missing, cost, _ = regions(n_per=20)
    quality[:, 1] = 1.0
    predicted = train(points, quality, missing, cost).predict(points)
    np.testing.assert_allclose(predicted.quality[:, 1], 1.0)


def test_save_and_load_give_identical_predictions(tmp_path):
    points, quality, missing, cost, _ = regions(n_per=50)
    predictor = train(points, quality, missing, cost, calibration="isotonic")
    predictor.save(tmp_path)
    loaded = PREDICTOR_KINDS.get("logistic").load(tmp_path, MODELS, predictor.hyperparameters)
    queries = regions(n_per=5, seed=4)[0]
    np.testing.assert_array_equal(loaded.predict(queries).quality, predictor.predict(queries).quality)
    np.testing.assert_array_equal(loaded.predict(queries).cost, predictor.predict(queries).cost)
    with pytest.raises(ValueError, match="expected"):
        loaded.predict(queries[:, :3])


def test_twenty_models_with_graded_and_missing_qualities_train():
    rng = np.random.default_rng(5)
    points = rng.normal(size=(120, 16)).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    quality = np.round(rng.uniform(0, 1, (120, 20)), 1)
    missing = rng.uniform(size=quality.shape) < 0.2
    models = tuple(f"m{j}" for j in range(20))
    predicted = train(points, quality, missing, rng.uniform(0.001, 0.01, (120, 20)), models).predict(points)
    assert predicted.quality.shape == predicted.cost.shape == (120, 20)
    assert ((predicted.quality >= 0) & (predicted.quality <= 1)).all() and (predicted.cost > 0).all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, q, m, c: (p, q * 2.0, m, c), "qualities must lie in"),
        (lambda p, q, m, c: (p, q, m, c * np.inf), "costs must be finite"),
        (lambda p, q, m, c: (p[:5], q, m, c), r"need \(n, m\)"),
        (lambda p, q, m, c: (p, q, np.ones_like(m), c), "no known quality"),
    ],
)
def test_data_it_cannot_learn_from_is_refused_with_a_reason(change, message):
    points, quality, missing, cost, _ = regions(n_per=5)
    with pytest.raises(ValueError, match=message):
        train(*change(points, quality, missing, cost))


def test_the_registry_lists_the_kind_with_a_small_valid_grid():
    kind = PREDICTOR_KINDS.get("logistic")
    assert "logistic" in PREDICTOR_KINDS.names() and kind.parameters is LogisticParameters
    assert 1 <= len(kind.grid) <= 6
    for point in kind.grid:
        LogisticParameters.model_validate(point)
    with pytest.raises(ValueError, match="greater than 0"):
        LogisticParameters(regularization=0.0)
