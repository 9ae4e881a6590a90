"""The simulated judge of RouterBench: the truth, flipped with probability ε.

A perfect judge accepts an answer exactly when its recorded quality reaches the threshold; the simulated
judge flips each such verdict independently with probability ``error_rate``.
"""

from __future__ import annotations

import numpy as np

from routeyard.arrays import BoolArray, FloatArray


def simulated_verdicts(
    quality: FloatArray, *, threshold: float, error_rate: float, rng: np.random.Generator
) -> BoolArray:
    """Accept/reject verdicts, same shape as ``quality``.

    Args:
        quality: recorded quality in [0, 1] of each answer to be judged, any shape.
        threshold: accept when quality ≥ threshold (before errors).
        error_rate: probability ε in [0, 1] that a verdict is flipped.
        rng: the seeded generator the flips are drawn from (one uniform draw per verdict).

    Raises:
        ValueError: when ``error_rate`` is outside [0, 1].
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error rate must be in [0, 1], got {error_rate}")
    truth = quality >= threshold
    flips = rng.random(quality.shape) < error_rate
    return np.asarray(truth ^ flips, dtype=np.bool_)
