"""The KNN quality predictor: FAISS inner-product search over the training prompts' embeddings.

For a prompt, the k nearest training prompts (cosine similarity: inner product of L2-normalised
vectors, exact search with ``faiss.IndexFlatIP``) vote. Predicted quality of model j is the mean of
the neighbours' known qualities of j; predicted $ cost is the mean of their costs of j. With
``weighting="distance"`` each neighbour weighs 1 / (cosine distance + 1e-3), so near-duplicates
dominate. A model that no neighbour has a known quality for falls back to its mean over all training
prompts. This is RouterBench's KNN router, with the cost of *this* prompt predicted the same way.

Shrinkage: a mean over k neighbours is noisy, and routing on noise loses to always calling the best
single model. With ``shrinkage`` s > 0 the predicted quality is (1 − s) × the k-neighbour mean + s × the
uniform mean over a wide neighbourhood of ``prior_k`` prompts (which, on RouterBench, is about the
dataset's mean): the router departs from the dataset's best models only where the close neighbours
agree. Cost is always the k-neighbour mean. benchmarks/RESULTS.md shows what this buys on real data.

FAISS runs single-threaded for small batches (one prompt at a time is 3× faster that way on 2 cores,
architecture.md §9) and on every core for large ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import faiss
import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from routeyard.arrays import BoolArray, FloatArray, Vectors
from routeyard.predictor.kinds import PREDICTOR_KINDS, PredictorKind, TrainingSet
from routeyard.predictor.quality_predictor import QualityCostPrediction

Weighting = Literal["uniform", "distance"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
INDEX_FILE = "index.faiss"
LABELS_FILE = "labels.npz"
_SINGLE_THREAD_BELOW = 16  # queries per call
_CHUNK = 256  # queries per search: bounds the (queries, prior_k, models) arrays (≈ 0.3 GB at 800 × 200)


class KnnParameters(BaseModel):
    """The KNN kind's hyperparameters, and the command line's.

    The defaults are neutral, chosen before looking at any result: RouterBench's plain KNN router (10
    neighbours, uniform votes, no shrinkage). They were not chosen on any test split; ``routeyard
    train`` and ``routeyard replay --train`` choose among :data:`KNN_GRID` by cross-validation inside the
    train split (``routeyard.evaluation.selection``) unless told not to search.
    """

    model_config = ConfigDict(extra="forbid")

    k: int = Field(default=10, ge=1, description="neighbours that vote")
    weighting: Weighting = Field(default="uniform", description="how votes weigh")
    prior_k: int = Field(default=400, ge=1, description="the wide neighbourhood's size")
    shrinkage: float = Field(
        default=0.0, ge=0.0, le=1.0, description="weight of the wide neighbourhood's mean quality, 0 – 1"
    )


DEFAULT_PARAMETERS: dict[str, Any] = KnnParameters().model_dump()
"""The defaults of :class:`KnnParameters` as keyword arguments of :class:`KnnPredictor`."""

KNN_GRID: tuple[dict[str, Any], ...] = tuple(
    {"k": k, **shrunk}
    for k in (10, 40)
    for shrunk in (
        {},
        {"shrinkage": 0.5, "prior_k": 200},
        {"shrinkage": 0.5, "prior_k": 800},
        {"shrinkage": 0.8, "prior_k": 400},
    )
)
"""The 8 points cross-validation searches, fixed a priori: few or many voters, each plain or shrunk
towards a narrower or wider neighbourhood's mean, halfway or most of the way."""


class KnnPredictor:
    """k-nearest-neighbour predictor of quality and cost (see the module docstring)."""

    kind = "knn"

    def __init__(
        self,
        embeddings: Vectors,
        quality: FloatArray,
        missing: BoolArray,
        cost: FloatArray,
        models: tuple[str, ...],
        *,
        k: int = DEFAULT_PARAMETERS["k"],
        weighting: str = DEFAULT_PARAMETERS["weighting"],
        prior_k: int = DEFAULT_PARAMETERS["prior_k"],
        shrinkage: float = DEFAULT_PARAMETERS["shrinkage"],
        index: faiss.Index | None = None,
    ) -> None:
        """Index ``embeddings`` (n, d) with their labels (n, m each). Raises ``ValueError`` on bad shapes,
        ``k < 1``, an unknown ``weighting`` or ``shrinkage`` outside [0, 1]."""
        if k < 1 or prior_k < 1:
            raise ValueError(f"k and prior_k must be at least 1, got {k}, {prior_k}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        n = len(embeddings)
        if n == 0 or quality.shape != (n, len(models)) or missing.shape != quality.shape:
            raise ValueError(
                f"need n ≥ 1 embeddings and (n, m) labels; got {embeddings.shape}, {quality.shape}"
            )
        if cost.shape != quality.shape:
            raise ValueError(f"cost is {cost.shape}, quality is {quality.shape}")
        self.models = models
        self.dimension = int(embeddings.shape[1])
        self.k = min(k, n)
        self.prior_k = min(prior_k, n)
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.hyperparameters: dict[str, Any] = {
            "k": k,
            "weighting": weighting,
            "prior_k": prior_k,
            "shrinkage": shrinkage,
            "n_indexed": n,
        }
        self._known = ~missing
        self._quality = np.where(missing, 0.0, quality)
        self._cost = cost
        known_count = self._known.sum(axis=0)
        self._fallback = np.divide(
            self._quality.sum(axis=0), known_count, out=np.zeros(len(models)), where=known_count > 0
        )
        if index is None:
            index = faiss.IndexFlatIP(self.dimension)
            index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
        self._index = index

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        queries = np.ascontiguousarray(embeddings, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise ValueError(f"expected (n, {self.dimension}) embeddings, got {queries.shape}")
        faiss.omp_set_num_threads(1 if len(queries) < _SINGLE_THREAD_BELOW else os.cpu_count() or 1)
        parts = [self._predict_chunk(queries[i : i + _CHUNK]) for i in range(0, len(queries), _CHUNK)]
        if not parts:
            empty = np.zeros((0, len(self.models)))
            return QualityCostPrediction(quality=empty, cost=empty.copy())
        return QualityCostPrediction(
            quality=np.concatenate([p.quality for p in parts]), cost=np.concatenate([p.cost for p in parts])
        )

    def _predict_chunk(self, queries: NDArray[np.float32]) -> QualityCostPrediction:
        """Predictions for at most :data:`_CHUNK` queries: the (n, k, m) neighbour arrays stay bounded."""
        wide = self.prior_k if self.shrinkage > 0.0 else self.k
        similarity, neighbours = self._index.search(queries, max(self.k, wide))
        near, weights = neighbours[:, : self.k], self._weights(similarity[:, : self.k])[:, :, None]
        quality = self._mean_quality(near, weights)
        if self.shrinkage > 0.0:
            prior = self._mean_quality(neighbours[:, :wide], np.ones((len(queries), wide, 1)))
            quality = (1.0 - self.shrinkage) * quality + self.shrinkage * prior
        cost = (self._cost[near] * weights).sum(axis=1) / weights.sum(axis=1)
        return QualityCostPrediction(quality=quality, cost=cost)

    def _mean_quality(self, neighbours: NDArray[np.int64], weights: FloatArray) -> FloatArray:
        """(n, m) weighted mean of the neighbours' known qualities; the fallback where none is known."""
        known = self._known[neighbours] * weights  # (n, k, m)
        votes = known.sum(axis=1)
        quality = (self._quality[neighbours] * known).sum(axis=1)
        mean: FloatArray = np.where(votes > 0, quality / np.where(votes > 0, votes, 1.0), self._fallback)
        return mean

    def _weights(self, similarity: NDArray[np.float32]) -> FloatArray:
        if self.weighting == "uniform":
            return np.ones(similarity.shape)
        distance = np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
        return 1.0 / (distance + 1e-3)

    def save(self, directory: Path) -> None:
        faiss.write_index(self._index, str(directory / INDEX_FILE))
        np.savez(
            directory / LABELS_FILE,
            quality=self._quality,
            missing=~self._known,
            cost=self._cost,
        )

    @classmethod
    def load(cls, directory: Path, models: tuple[str, ...], hyperparameters: dict[str, Any]) -> KnnPredictor:
        """Read what :meth:`save` wrote; raises ``OSError``/``ValueError``/``RuntimeError`` on damage."""
        index = faiss.read_index(str(directory / INDEX_FILE))
        with np.load(directory / LABELS_FILE) as labels:
            quality, missing, cost = labels["quality"], labels["missing"], labels["cost"]
        if index.ntotal != len(quality):
            raise ValueError(f"index holds {index.ntotal} vectors, labels {len(quality)} rows")
        return cls(
            np.zeros((len(quality), index.d), dtype=np.float32),
            quality,
            missing,
            cost,
            models,
            k=int(hyperparameters["k"]),
            weighting=str(hyperparameters["weighting"]),
            prior_k=int(hyperparameters["prior_k"]),
            shrinkage=float(hyperparameters["shrinkage"]),
            index=index,
        )


def _train(data: TrainingSet, parameters: KnnParameters) -> KnnPredictor:
    return KnnPredictor(
        data.embeddings, data.quality, data.missing, data.cost, data.models, **parameters.model_dump()
    )


PREDICTOR_KINDS.register(
    PredictorKind(name="knn", parameters=KnnParameters, train=_train, load=KnnPredictor.load, grid=KNN_GRID)
)
