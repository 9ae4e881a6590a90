"""The cluster quality predictor: k-means regions of embedding space, each with every model's record.

Training clusters the training prompts' embeddings with spherical k-means (``faiss.Kmeans``, seeded),
assigns every training prompt to its nearest centroid and keeps, per cluster and model, the mean of the
known qualities and the mean $ cost. Each mean is shrunk toward that model's mean over all training
prompts with a pseudo-count a (``prior_count``): (sum + a × global mean) / (count + a), so a small
cluster says little and an empty one says the global mean. This is cluster routing as in Avengers-Pro
(Zhang et al., 2025), with the cost of the region predicted the same way.

A prompt is predicted from its ``nearest`` clusters (cosine similarity to the centroids), weighted by a
softmax of similarity / ``temperature``; ``nearest=1`` is a hard assignment. Missing qualities count in
no mean.

The defaults (32 clusters, the 3 nearest blended, 30 pseudo-prompts) were chosen by 5-fold
cross-validated AIQ inside the RouterBench sample's train split: 8 – 64 clusters and hard or soft
assignment all scored within 0.002 of each other; the soft blend varied least across folds, and a
pseudo-count of 300 (everything pulled to the mean over all datasets) lost 0.015.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from routeyard.arrays import FloatArray, Vectors
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction

CLUSTERS_FILE = "clusters.npz"
_ITERATIONS = 25  # k-means passes; faiss's default, converged on every table tried


class ClusterParameters(BaseModel):
    """The cluster kind's hyperparameters (the command line's defaults)."""

    model_config = ConfigDict(extra="forbid")

    clusters: int = Field(default=32, ge=1, description="k-means clusters (at most one per training prompt)")
    prior_count: float = Field(
        default=30.0,
        ge=0.0,
        description="pseudo-count of prompts pulling a cluster's means to the global ones",
    )
    nearest: int = Field(default=3, ge=1, description="clusters a prompt is predicted from")
    temperature: float = Field(
        default=0.05, gt=0.0, description="softmax temperature over the nearest clusters' cosine similarity"
    )
    seed: int = Field(default=0, description="k-means seed")


class ClusterPredictor:
    """Per-cluster quality and cost tables over k-means centroids (see the module docstring)."""

    kind = "cluster"

    def __init__(
        self,
        centroids: Vectors,
        quality: FloatArray,
        cost: FloatArray,
        models: tuple[str, ...],
        hyperparameters: dict[str, Any],
    ) -> None:
        """Wrap (k, d) L2-normalised ``centroids`` and their (k, m) shrunk mean ``quality`` and ``cost``;
        ``hyperparameters`` must hold ``nearest`` and ``temperature``. Raises ``ValueError`` on bad shapes."""
        k = len(centroids)
        if k == 0 or quality.shape != (k, len(models)) or cost.shape != quality.shape:
            raise ValueError(
                f"need k ≥ 1 centroids and (k, m) tables; got {centroids.shape}, {quality.shape}, "
                f"{cost.shape}"
            )
        self.models = models
        self.dimension = int(centroids.shape[1])
        self.hyperparameters = hyperparameters
        self._centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self._quality = quality
        self._cost = cost
        self._nearest = min(int(hyperparameters["nearest"]), k)
        self._temperature = float(hyperparameters["temperature"])

    @classmethod
    def train(cls, data: TrainingSet, parameters: ClusterParameters) -> ClusterPredictor:
        """Cluster ``data``'s embeddings and tabulate each cluster's shrunk means.

        Raises ``ValueError`` for data it cannot learn from (see :meth:`TrainingSet.check`).
        """
        data.check()
        n, d = data.embeddings.shape
        k = min(parameters.clusters, n)
        vectors = np.ascontiguousarray(data.embeddings, dtype=np.float32)
        kmeans = faiss.Kmeans(
            d, k, niter=_ITERATIONS, seed=parameters.seed, spherical=True, min_points_per_centroid=1
        )
        kmeans.train(vectors)
        centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        assignment = (vectors @ centroids.T).argmax(axis=1)
        members = np.eye(k)[assignment]  # (n, k) one-hot
        known = ~data.missing
        quality = _shrunk_means(
            members.T @ np.where(known, data.quality, 0.0), members.T @ known, parameters.prior_count
        )
        cost = _shrunk_means(
            members.T @ data.cost, members.T @ np.ones_like(data.cost), parameters.prior_count
        )
        hyperparameters = {**parameters.model_dump(), "clusters_used": k, "n_trained": n}
        return cls(centroids, quality, cost, data.models, hyperparameters)

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"expected (n, {self.dimension}) embeddings, got {queries.shape}")
        similarity = (queries @ self._centroids.T).astype(np.float64)
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, : self._nearest]
        logits = np.take_along_axis(similarity, nearest, axis=1) / self._temperature
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        quality = np.einsum("nc,ncm->nm", weights, self._quality[nearest])
        cost = np.einsum("nc,ncm->nm", weights, self._cost[nearest])
        return QualityCostPrediction(quality=np.clip(quality, 0.0, 1.0), cost=np.maximum(cost, 0.0))

    def save(self, directory: Path) -> None:
        np.savez(directory / CLUSTERS_FILE, centroids=self._centroids, quality=self._quality, cost=self._cost)

    @classmethod
    def load(
        cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]
    ) -> ClusterPredictor:
        """Read what :meth:`save` wrote; raises ``OSError``/``ValueError``/``KeyError`` on damage."""
        with np.load(directory / CLUSTERS_FILE) as tables:
            centroids, quality, cost = tables["centroids"], tables["quality"], tables["cost"]
        return cls(centroids, quality, cost, models, hyperparameters)


def _shrunk_means(sums: FloatArray, counts: FloatArray, prior_count: float) -> FloatArray:
    """(k, m) (sums + a × global mean) / (counts + a); the global mean where a cluster counts nothing."""
    global_mean = sums.sum(axis=0) / counts.sum(axis=0)
    denominator = counts + prior_count
    shrunk: FloatArray = np.where(
        denominator > 0,
        (sums + prior_count * global_mean) / np.where(denominator > 0, denominator, 1.0),
        global_mean,
    )
    return shrunk


PREDICTOR_KINDS.register(
    PredictorKind(
        name="cluster",
        parameters=ClusterParameters,
        train=ClusterPredictor.train,
        load=ClusterPredictor.load,
        grid=(
            {},
            {"clusters": 8, "nearest": 1},
            {"clusters": 16, "nearest": 1},
            {"clusters": 64, "nearest": 4},
            {"prior_count": 10.0},
            {"prior_count": 100.0},
        ),
    )
)
