"""The logistic quality predictor: one calibrated linear classifier per model on the prompt's embedding.

As in CARROT (Somerstep et al., 2025): for every model j, a logistic regression on the embedding
predicts the probability that j answers well. Quality may be graded, so each prompt with known quality
q counts twice, as label 1 with weight q and as label 0 with weight 1 − q (the cross-entropy against
the soft label q); prompts with unknown quality of j are left out of j's fit. The L2 penalty
``regularization`` is 1 / scikit-learn's C.

The raw probabilities of a penalised linear model are shrunk toward the mean, and the
willingness-to-pay rule trades quality against $ cost, so their scale matters. Calibration learns a map
from the classifier's output to q on out-of-fold outputs (``calibration_folds`` folds, so the map is
learnt on prompts the classifier did not see), then applies it to the classifier fitted on every
prompt: ``"platt"`` (the default) fits a logistic regression of q on the logit, which folds into the
classifier's weights and bias; ``"isotonic"`` fits a non-decreasing step map of q on the probability;
``"none"`` keeps the raw probabilities. Chosen by 5-fold cross-validated AIQ inside the RouterBench
sample's train split: Platt with a strong penalty (``regularization`` 10, for L2-normalised
embeddings) led; isotonic, with ≈ 2,000 prompts per model, was the noisiest.

Cost is predicted per model by a ridge regression of log cost on the embedding, mapped back with exp and
the mean residual variance (the mean of a lognormal), so it follows prompt length like the KNN's cost.
A model whose known qualities are all equal, or too few to split into folds, is predicted as its mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from routeyard.arrays import FloatArray, Vectors
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction

Calibration = Literal["isotonic", "platt", "none"]
MODEL_FILE = "logistic.npz"
_COST_FLOOR = 1e-7  # $; log(0) guard, far below any real call
_MAX_ITERATIONS = 500
_PLATT_REGULARIZATION = 1e-6  # Platt's two numbers need no penalty
_PROBABILITY_FLOOR = 1e-6
_IDENTITY = np.array([0.0, 1.0])  # a calibration map that changes nothing
_COST_REGULARIZATION = 1.0  # ridge's alpha; 0.1 – 10 changed cross-validated AIQ by < 0.001


class LogisticParameters(BaseModel):
    """The logistic kind's hyperparameters (the command line's defaults)."""

    model_config = ConfigDict(extra="forbid")

    regularization: float = Field(
        default=10.0,
        gt=0.0,
        description="L2 penalty of each classifier (1 / scikit-learn's C): larger is smoother",
    )
    calibration: Calibration = Field(default="platt", description="how probabilities are calibrated")
    calibration_folds: int = Field(
        default=3, ge=2, description="folds whose out-of-fold probabilities the calibration is fitted on"
    )
    seed: int = Field(default=0, description="seed of the calibration folds")


@dataclass(frozen=True)
class _Fitted:
    """What a trained predictor holds, for m models and d-long embeddings (float64 arrays):
    ``weights`` (m, d) and ``bias`` (m,) of the classifiers (Platt's scaling folded in); each model's
    calibration map from raw probability ``knots_x`` to quality ``knots_y`` (m, t), padded with NaN;
    ``cost_weights`` (m, d) and ``cost_bias`` (m,) of the log-cost regression."""

    weights: FloatArray
    bias: FloatArray
    knots_x: FloatArray
    knots_y: FloatArray
    cost_weights: FloatArray
    cost_bias: FloatArray

    def problems(self, m: int) -> list[str]:
        """Each array whose shape does not fit m models (empty when all is well)."""
        d, t = self.weights.shape[-1], self.knots_x.shape[-1]
        expected = {
            "weights": (m, d),
            "bias": (m,),
            "knots_x": (m, t),
            "knots_y": (m, t),
            "cost_weights": (m, d),
            "cost_bias": (m,),
        }
        return [
            f"{name} is {getattr(self, name).shape}, expected {shape}"
            for name, shape in expected.items()
            if getattr(self, name).shape != shape
        ]


class LogisticPredictor:
    """Per-model calibrated logistic regressions and log-cost ridge regressions (see the module docstring)."""

    kind = "logistic"

    def __init__(self, fitted: _Fitted, models: tuple[str, ...], hyperparameters: dict[str, Any]) -> None:
        """Wrap what :meth:`train` fitted; raises ``ValueError`` when its shapes do not fit ``models``."""
        problems = fitted.problems(len(models))
        if problems:
            raise ValueError("; ".join(problems))
        self.models = models
        self.dimension = int(fitted.weights.shape[1])
        self.hyperparameters = hyperparameters
        self._fitted = fitted

    @classmethod
    def train(cls, data: TrainingSet, parameters: LogisticParameters) -> LogisticPredictor:
        """Fit every model's classifier, calibration and cost regression on ``data``.

        Raises ``ValueError`` for data it cannot learn from (see
        :meth:`routeyard.predictor.kinds.TrainingSet.check`).
        """
        data.check()
        x = np.asarray(data.embeddings, dtype=np.float64)
        known = ~data.missing
        with threadpool_limits(limits=1, user_api="blas"):  # many small fits: more threads only contend
            fits = [
                _fit_quality(x[known[:, j]], data.quality[known[:, j], j], parameters)
                for j in range(len(data.models))
            ]
            cost_weights, cost_bias = _fit_cost(x, data.cost)
        knots = max(len(f.knots_x) for f in fits)
        fitted = _Fitted(
            weights=np.stack([f.weights for f in fits]),
            bias=np.array([f.bias for f in fits]),
            knots_x=np.stack([_padded(f.knots_x, knots) for f in fits]),
            knots_y=np.stack([_padded(f.knots_y, knots) for f in fits]),
            cost_weights=cost_weights,
            cost_bias=cost_bias,
        )
        hyperparameters = {**parameters.model_dump(), "dimension": int(x.shape[1]), "n_trained": len(x)}
        return cls(fitted, data.models, hyperparameters)

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        queries = np.asarray(embeddings, dtype=np.float64)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"expected (n, {self.dimension}) embeddings, got {queries.shape}")
        f = self._fitted
        raw = _sigmoid(queries @ f.weights.T + f.bias)
        quality = np.empty_like(raw)
        for j, (knots_x, knots_y) in enumerate(zip(f.knots_x, f.knots_y, strict=True)):
            used = ~np.isnan(knots_x)
            quality[:, j] = np.interp(raw[:, j], knots_x[used], knots_y[used])
        cost = np.exp(queries @ f.cost_weights.T + f.cost_bias)
        return QualityCostPrediction(quality=np.clip(quality, 0.0, 1.0), cost=cost)

    def save(self, directory: Path) -> None:
        np.savez(directory / MODEL_FILE, **asdict(self._fitted))

    @classmethod
    def load(
        cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]
    ) -> LogisticPredictor:
        """Read what :meth:`save` wrote; raises ``OSError``/``ValueError``/``KeyError`` on damage."""
        with np.load(directory / MODEL_FILE) as stored:
            arrays = {f.name: np.asarray(stored[f.name], dtype=np.float64) for f in fields(_Fitted)}
        return cls(_Fitted(**arrays), models, hyperparameters)


@dataclass(frozen=True)
class _QualityFit:
    """One model's classifier (``weights`` (d,), ``bias``) and calibration map (``knots_x`` → ``knots_y``)."""

    weights: FloatArray
    bias: float
    knots_x: FloatArray = field(default_factory=lambda: _IDENTITY.copy())
    knots_y: FloatArray = field(default_factory=lambda: _IDENTITY.copy())


def _fit_quality(x: FloatArray, quality: FloatArray, parameters: LogisticParameters) -> _QualityFit:
    """One model's fit on the (k, d) embeddings of its k graded prompts and their (k,) qualities."""
    if len(quality) < parameters.calibration_folds or quality.min() == quality.max():
        return _constant(x.shape[1], float(quality.mean()))
    weights, bias = _soft_logistic(x, quality, parameters.regularization)
    if parameters.calibration == "none":
        return _QualityFit(weights, bias)
    logits = _out_of_fold_logits(x, quality, parameters)
    if parameters.calibration == "platt":
        slope, intercept = _soft_logistic(logits[:, None], quality, _PLATT_REGULARIZATION)
        slope = np.maximum(slope, 0.0)  # a classifier worse than none out of fold: keep only the mean
        return _QualityFit(weights * slope[0], bias * slope[0] + intercept)
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    isotonic.fit(_sigmoid(logits), quality)
    return _QualityFit(weights, bias, isotonic.X_thresholds_, isotonic.y_thresholds_)


def _out_of_fold_logits(x: FloatArray, quality: FloatArray, parameters: LogisticParameters) -> FloatArray:
    """(k,) each prompt's logit by a classifier fitted on the other folds (``calibration_folds``)."""
    logits = np.empty(len(quality))
    folds = KFold(parameters.calibration_folds, shuffle=True, random_state=parameters.seed)
    for fitted, held_out in folds.split(x):
        if quality[fitted].min() == quality[fitted].max():  # one value to learn: predict it
            logits[held_out] = _logit(float(quality[fitted][0]))
            continue
        weights, bias = _soft_logistic(x[fitted], quality[fitted], parameters.regularization)
        logits[held_out] = x[held_out] @ weights + bias
    return logits


def _constant(dimension: int, mean: float) -> _QualityFit:
    """A fit that predicts ``mean`` everywhere: every raw probability maps to it."""
    return _QualityFit(np.zeros(dimension), 0.0, _IDENTITY.copy(), np.array([mean, mean]))


def _soft_logistic(x: FloatArray, quality: FloatArray, regularization: float) -> tuple[FloatArray, float]:
    """Logistic regression against soft labels: each row as label 1 (weight q) and label 0 (weight 1 − q)."""
    n = len(quality)
    classifier = LogisticRegression(C=1.0 / regularization, max_iter=_MAX_ITERATIONS)
    classifier.fit(
        np.concatenate([x, x]),
        np.concatenate([np.ones(n), np.zeros(n)]),
        sample_weight=np.concatenate([quality, 1.0 - quality]),
    )
    return classifier.coef_[0].astype(np.float64), float(classifier.intercept_[0])


def _fit_cost(x: FloatArray, cost: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Ridge of log cost on the embeddings, all models at once; the bias absorbs half the residual
    variance so exp gives the lognormal mean, not the median. Returns (m, d) weights and (m,) bias."""
    log_cost = np.log(np.maximum(cost, _COST_FLOOR))
    ridge = Ridge(alpha=_COST_REGULARIZATION).fit(x, log_cost)
    residual_variance = (log_cost - ridge.predict(x)).var(axis=0)
    return ridge.coef_.astype(np.float64), ridge.intercept_ + residual_variance / 2.0


def _padded(values: FloatArray, length: int) -> FloatArray:
    return np.concatenate([values, np.full(length - len(values), np.nan)])


def _logit(p: float) -> float:
    clipped = min(max(p, _PROBABILITY_FLOOR), 1.0 - _PROBABILITY_FLOOR)
    return float(np.log(clipped / (1.0 - clipped)))


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


PREDICTOR_KINDS.register(
    PredictorKind(
        name="logistic",
        parameters=LogisticParameters,
        train=LogisticPredictor.train,
        load=LogisticPredictor.load,
        grid=(
            {},
            {"regularization": 1.0},
            {"regularization": 3.0},
            {"regularization": 30.0},
            {"calibration": "isotonic"},
        ),
    )
)
