"""The QualityPredictor seam: embeddings in, every model's predicted quality and $ cost out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from routeyard.arrays import FloatArray, Vectors


@dataclass(frozen=True)
class QualityCostPrediction:
    """Per prompt and model: predicted quality in [0, 1] and predicted $ cost ≥ 0, (n, m) float64 each."""

    quality: FloatArray
    cost: FloatArray


class QualityPredictor(Protocol):
    """Predicts how well and how cheaply each of :attr:`models` answers a prompt, from its embedding.

    Attributes:
        kind: the artifact kind (``"knn"``, ``"mlp"``), written into the manifest.
        models: the m model names, the column order of every prediction.
        dimension: the embedding length it expects.
        hyperparameters: what it was built with, JSON-serialisable, written into the manifest.
    """

    kind: str
    models: tuple[str, ...]
    dimension: int
    hyperparameters: dict[str, Any]

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        """Predictions for (n, dimension) L2-normalised embeddings."""
        ...

    def save(self, directory: Path) -> None:
        """Write its own files (index, weights, labels) into an existing ``directory``."""
        ...
