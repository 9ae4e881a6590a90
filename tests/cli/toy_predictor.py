"""A toy predictor kind, in one module: what a new kind of predictor needs and nothing more.

It predicts, for every prompt alike, each model's mean quality on the training prompts (raised by
``optimism``, capped at 1) and its mean $ cost. ``TOY_KIND`` is its registry record; the test fixture
registers it (a kind shipped in routeyard would call ``PREDICTOR_KINDS.register`` here, at import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routeyard.arrays import FloatArray, Vectors
from routeyard.predictor.kinds import PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction

MEANS_FILE = "means.npz"


class ToyParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    optimism: float = Field(default=0.0, ge=0.0, le=1.0, description="added to every predicted quality")


class ToyPredictor:
    kind = "toy"

    def __init__(
        self, models: tuple[str, ...], dimension: int, quality: FloatArray, cost: FloatArray, optimism: float
    ) -> None:
        """Predicts (m,) ``quality`` (already raised by ``optimism``) and (m,) ``cost`` for every prompt."""
        self.models, self.dimension = models, dimension
        self.hyperparameters: dict[str, Any] = {"optimism": optimism}
        self._quality, self._cost = quality, cost

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        n = len(embeddings)
        return QualityCostPrediction(np.tile(self._quality, (n, 1)), np.tile(self._cost, (n, 1)))

    def save(self, directory: Path) -> None:
        np.savez(directory / MEANS_FILE, quality=self._quality, cost=self._cost, dimension=self.dimension)

    @classmethod
    def load(cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]) -> ToyPredictor:
        with np.load(directory / MEANS_FILE) as means:
            quality, cost, dimension = means["quality"], means["cost"], int(means["dimension"])
        return cls(models, dimension, quality, cost, float(hyperparameters["optimism"]))


def train(data: TrainingSet, parameters: ToyParameters) -> ToyPredictor:
    known = ~data.missing
    quality = np.where(known, data.quality, 0.0).sum(axis=0) / np.maximum(known.sum(axis=0), 1)
    raised = np.minimum(quality + parameters.optimism, 1.0)
    return ToyPredictor(
        data.models, data.embeddings.shape[1], raised, data.cost.mean(axis=0), parameters.optimism
    )


TOY_KIND = PredictorKind(name="toy", parameters=ToyParameters, train=train, load=ToyPredictor.load)
