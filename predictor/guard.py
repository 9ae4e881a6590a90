"""The Zero guard: a trained predictor that routes as the Zero router where it was shown to lose to it.

Cross-validation inside the train split (``routeyard.evaluation.selection``) tells, per dataset, whether
the learned predictor's routing beats routing on the dataset's mean qualities and costs — which is how the
Zero router routes: every prompt of the dataset to the same model, the one a willingness to pay prefers
on average. Where it does not, :class:`ZeroGuard` answers for prompts of that *region* with the region's
train means instead of the learned predictions, so the willingness-to-pay rule routes there as the Zero
router does.

A prompt's region is the dataset whose train centroid (the normalised mean embedding) is nearest by
cosine; the gateway never knows a request's dataset, so this is how it tells. The guard is saved beside
the inner predictor's files (:data:`GUARD_FILE`) and :func:`load_guard` wraps the loaded predictor again;
its kind, models, dimension and hyperparameters are the inner predictor's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from routeyard.arrays import BoolArray, FloatArray, Vectors
from routeyard.predictor.quality_predictor import QualityCostPrediction, QualityPredictor

GUARD_FILE = "zero_guard.npz"


class ZeroGuard:
    """The inner predictor, with the regions in ``fallback`` answered by their train means.

    Args:
        inner: the learned predictor.
        regions: the r region (dataset) names.
        centroids: (r, d) L2-normalised centroid of each region's train embeddings.
        fallback: (r,) true where the region routes as the Zero router.
        region_quality, region_cost: (r, m) each region's mean train quality and cost per model.
    """

    def __init__(
        self,
        inner: QualityPredictor,
        regions: Sequence[str],
        centroids: Vectors,
        fallback: BoolArray,
        region_quality: FloatArray,
        region_cost: FloatArray,
    ) -> None:
        r, m = len(regions), len(inner.models)
        if centroids.shape != (r, inner.dimension) or fallback.shape != (r,):
            raise ValueError(f"need ({r}, {inner.dimension}) centroids and ({r},) flags")
        if region_quality.shape != (r, m) or region_cost.shape != (r, m):
            raise ValueError(f"need ({r}, {m}) region means")
        self.inner = inner
        self.kind = inner.kind
        self.models = inner.models
        self.dimension = inner.dimension
        self.hyperparameters: dict[str, Any] = inner.hyperparameters
        self.regions = tuple(regions)
        self.fallback = fallback
        self._centroids = centroids.astype(np.float32)
        self._quality = region_quality
        self._cost = region_cost

    @property
    def fallback_regions(self) -> tuple[str, ...]:
        return tuple(name for name, flag in zip(self.regions, self.fallback, strict=True) if flag)

    def region_of(self, embeddings: Vectors) -> NDArray[np.intp]:
        """(n,) index of each embedding's nearest region centroid."""
        return np.asarray(np.argmax(embeddings @ self._centroids.T, axis=1), dtype=np.intp)

    def predict(self, embeddings: Vectors) -> QualityCostPrediction:
        prediction = self.inner.predict(embeddings)
        if not self.fallback.any():
            return prediction
        region = self.region_of(embeddings)
        guarded = self.fallback[region]
        quality = np.where(guarded[:, None], self._quality[region], prediction.quality)
        cost = np.where(guarded[:, None], self._cost[region], prediction.cost)
        return QualityCostPrediction(quality=quality, cost=cost)

    def save(self, directory: Path) -> None:
        self.inner.save(directory)
        np.savez(
            directory / GUARD_FILE,
            regions=np.array(self.regions),
            centroids=self._centroids,
            fallback=self.fallback,
            quality=self._quality,
            cost=self._cost,
        )


def fit_guard(
    inner: QualityPredictor,
    embeddings: Vectors,
    datasets: NDArray[np.str_],
    quality: FloatArray,
    missing: BoolArray,
    cost: FloatArray,
    fallback_datasets: Sequence[str],
) -> ZeroGuard:
    """A guard over ``inner`` with one region per dataset of the training rows (``embeddings`` (n, d),
    ``datasets`` (n,), ``quality``/``missing``/``cost`` (n, m), columns in ``inner.models`` order), routing
    the ``fallback_datasets`` as the Zero router. Raises ``ValueError`` for a fallback dataset the rows
    do not have."""
    regions = sorted(set(datasets.tolist()))
    unknown = set(fallback_datasets) - set(regions)
    if unknown:
        raise ValueError(f"fallback datasets {sorted(unknown)} are not in the training rows")
    centroids, means, costs = [], [], []
    for region in regions:
        rows = datasets == region
        centre = embeddings[rows].mean(axis=0)
        centroids.append(centre / max(float(np.linalg.norm(centre)), 1e-12))
        mean_quality, mean_cost = mean_outcomes(quality[rows], missing[rows], cost[rows])
        means.append(mean_quality)
        costs.append(mean_cost)
    fallback = np.array([region in fallback_datasets for region in regions], dtype=bool)
    return ZeroGuard(inner, regions, np.stack(centroids), fallback, np.stack(means), np.stack(costs))


def mean_outcomes(quality: FloatArray, missing: BoolArray, cost: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per model, the mean known quality (0 for a model never graded) and the mean cost of (n, m) rows:
    what the Zero router routes a region on."""
    known = ~missing
    counts = known.sum(axis=0)
    total = np.where(known, quality, 0.0).sum(axis=0)
    mean: FloatArray = np.divide(total, counts, out=np.zeros(len(counts)), where=counts > 0)
    return mean, cost.mean(axis=0)


def load_guard(directory: Path, inner: QualityPredictor) -> QualityPredictor:
    """``inner`` wrapped in the guard saved in ``directory``, or ``inner`` itself when none was saved.
    Raises ``OSError``/``ValueError``/``KeyError`` on a damaged guard file."""
    path = directory / GUARD_FILE
    if not path.exists():
        return inner
    with np.load(path) as saved:
        return ZeroGuard(
            inner,
            [str(name) for name in saved["regions"]],
            saved["centroids"],
            saved["fallback"].astype(bool),
            saved["quality"],
            saved["cost"],
        )
