"""A paired bootstrap of every router's AIQ gain over the Zero router, over test prompts.

A dataset's test prompts are a sample; a router that beats the Zero router by 0.005 AIQ on 300 prompts
may not on the next 300. The bootstrap asks how much the gain moves when the prompts are drawn again:

1. A replicate draws n prompts with replacement from the dataset's n test prompts (multinomial counts,
   seeded ``numpy.random.Generator``). It is *paired*: every router and the single models are scored on
   the same draw, so what they share (hard prompts, easy prompts) cancels out of the difference.
2. On that draw every curve's points are recomputed from the per-prompt outcomes the curve keeps
   (:class:`routeyard.evaluation.points.PromptOutcomes`) as one matrix product, weights (B, n) @
   outcomes (n, p); the AIQ cost range is recomputed from the drawn single-model means; hulls and AIQs
   are the replay's own, computed for all replicates at once (:func:`~routeyard.evaluation.hull.
   nondecreasing_hulls`, :func:`~routeyard.evaluation.aiq.aiq_of_hulls`, equal to the one-at-a-time
   functions, tested).
3. The gain of a router in a replicate is its AIQ minus the Zero router's (the hull of the single
   models). The interval is the percentile interval of the replicates (default 95 %: the 2.5th and
   97.5th percentiles); the point estimate is the gain on the prompts as they are.

Pooled: each replicate draws every dataset's prompts independently and takes the unweighted mean over
datasets of the per-dataset gains, as the pooled AIQ is the mean of the per-dataset AIQs.

What is resampled is the prompts only: a router's curve stays the one fitted on the train split, and a
simulated judge's verdicts stay the ones drawn; the interval says how sure the gain is on *prompts like
these*, not across retrainings.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import FloatArray
from routeyard.evaluation.aiq import aiq_of_hulls
from routeyard.evaluation.hull import nondecreasing_hulls
from routeyard.evaluation.points import Curve, PromptOutcomes

BOOTSTRAP_RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class GainInterval:
    """A router's AIQ minus the Zero router's: ``gain`` on the data, [``low``, ``high``] the bootstrap
    percentile interval at ``level`` over ``resamples`` replicates."""

    gain: float
    low: float
    high: float
    resamples: int
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or wholly below 0."""
        return self.low > 0.0 or self.high < 0.0


def dataset_rng(seed: int, dataset: str) -> np.random.Generator:
    """The generator of one dataset's replicates: fixed by the seed and the dataset's name alone, so a
    dataset's interval does not change with which other datasets are replayed."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode("utf-8"))])


def resample_weights(n: int, resamples: int, rng: np.random.Generator) -> FloatArray:
    """(resamples, n): row b gives each prompt its share of replicate b (draw counts / n, rows sum to 1).
    Raises ``ValueError`` for ``n`` or ``resamples`` < 1."""
    if n < 1 or resamples < 1:
        raise ValueError(f"need ≥ 1 prompt and ≥ 1 resample, got {n} and {resamples}")
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    return np.asarray(counts / n, dtype=np.float64)


def gain_replicates(curves: Sequence[Curve], single_models: Curve, weights: FloatArray) -> FloatArray:
    """(B, r): each curve's AIQ minus the Zero router's in each of the B replicates of ``weights``.

    Args:
        curves: r curves, each with prompt outcomes on the same n prompts as ``single_models``.
        single_models: the single models' curve with its outcomes (n, m): the Zero router and the range.
        weights: (B, n) from :func:`resample_weights`.

    Raises:
        ValueError: a curve without prompt outcomes, or outcomes on another number of prompts.
    """
    models = _outcomes(single_models, weights.shape[1])
    model_cost = weights @ models.cost
    low, high = model_cost.min(axis=1), model_cost.max(axis=1)
    zero = _replicate_aiqs(model_cost, weights @ models.quality, low, high)
    gains = [_curve_aiqs(curve, weights, low, high) - zero for curve in curves]
    return np.stack(gains, axis=1) if gains else np.empty((len(weights), 0))


def gain_interval(gain: float, replicates: FloatArray, level: float = LEVEL) -> GainInterval:
    """The percentile interval at ``level`` of ``replicates`` (B,), around the point estimate ``gain``."""
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return GainInterval(gain, float(low), float(high), len(replicates), level)


def _curve_aiqs(curve: Curve, weights: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """The curve's AIQ in every replicate."""
    outcomes = _outcomes(curve, weights.shape[1])
    return _replicate_aiqs(weights @ outcomes.cost, weights @ outcomes.quality, low, high)


def _replicate_aiqs(cost: FloatArray, quality: FloatArray, low: FloatArray, high: FloatArray) -> FloatArray:
    """AIQ of the points (B, p) of each replicate over that replicate's range."""
    return aiq_of_hulls(nondecreasing_hulls(cost, quality), low, high)


def _outcomes(curve: Curve, n: int) -> PromptOutcomes:
    if curve.outcomes is None:
        raise ValueError(f"curve {curve.router!r} keeps no per-prompt outcomes to resample")
    if curve.outcomes.cost.shape[0] != n:
        raise ValueError(
            f"curve {curve.router!r} has outcomes on {curve.outcomes.cost.shape[0]} prompts, not {n}"
        )
    return curve.outcomes
