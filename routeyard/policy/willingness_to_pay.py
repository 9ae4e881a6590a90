"""The willingness-to-pay decision rule (RouterBench §predictive routers).

A caller willing to pay ``w`` dollars per unit of quality gets, for each prompt, the model j maximising
``q̂_j − ĉ_j / w``; ties go to the cheaper predicted cost, then to the lower column index. ``w = 0`` means
"cheapest": the lowest predicted cost, ties to the higher predicted quality. ``w = inf`` means "best":
the highest predicted quality, ties to the cheaper. The live gateway and the replay harness both call
:func:`choose_by_willingness_to_pay`, so what is replayed is what is served.
"""

from __future__ import annotations

import math

import numpy as np

from routeyard.arrays import BoolArray, FloatArray, IndexArray


def log_spaced_grid(points: int = 64, low: float = 1e-6, high: float = 1e4) -> FloatArray:
    """``points`` log-spaced willingness-to-pay values from ``low`` to ``high``, with 0 and inf added.

    Returns an ascending float64 array of length ``points + 2``: ``[0, low, …, high, inf]``.
    """
    if points < 2 or not 0.0 < low < high:
        raise ValueError("need points ≥ 2 and 0 < low < high")
    return np.concatenate([[0.0], np.geomspace(low, high, points), [math.inf]])


def choose_by_willingness_to_pay(
    predicted_quality: FloatArray, predicted_cost: FloatArray, willingness_to_pay: float
) -> IndexArray:
    """Index of the chosen model for each prompt.

    Args:
        predicted_quality: (n, m) predicted quality in [0, 1].
        predicted_cost: (n, m) predicted $ cost, ≥ 0.
        willingness_to_pay: $ per unit of quality, in [0, inf].

    Returns:
        (n,) column indices into the m models.

    Raises:
        ValueError: on mismatched shapes, no models, or a negative or NaN willingness to pay.
    """
    _check(predicted_quality, predicted_cost, willingness_to_pay)
    if willingness_to_pay == 0.0:
        return _lexicographic_best(predicted_cost, -predicted_quality)
    if math.isinf(willingness_to_pay):
        return _lexicographic_best(-predicted_quality, predicted_cost)
    utility = predicted_quality - predicted_cost / willingness_to_pay
    return _lexicographic_best(-utility, predicted_cost)


def rank_by_willingness_to_pay(
    predicted_quality: FloatArray,
    predicted_cost: FloatArray,
    willingness_to_pay: float,
    allowed: BoolArray | None = None,
) -> list[IndexArray]:
    """Every allowed model per prompt, best first by the rule of :func:`choose_by_willingness_to_pay`.

    The first entry of each row is exactly that function's choice (tested); the rest is the order the
    gateway falls back in when the chosen backend fails. ``allowed`` (n, m), default all, drops models
    (excluded, over a cost cap, under a quality floor); a row may end up empty.

    Returns:
        n arrays of column indices, best first.
    """
    _check(predicted_quality, predicted_cost, willingness_to_pay)
    if willingness_to_pay == 0.0:
        primary, secondary = predicted_cost, -predicted_quality
    elif math.isinf(willingness_to_pay):
        primary, secondary = -predicted_quality, predicted_cost
    else:
        primary, secondary = predicted_cost / willingness_to_pay - predicted_quality, predicted_cost
    order = np.lexsort((secondary, primary), axis=1)
    if allowed is None:
        return [np.asarray(row, dtype=np.intp) for row in order]
    return [np.asarray(row[allowed[i, row]], dtype=np.intp) for i, row in enumerate(order)]


def _lexicographic_best(primary: FloatArray, secondary: FloatArray) -> IndexArray:
    """Per row, the column with the least ``primary``, ties broken by the least ``secondary``."""
    best = primary.min(axis=1, keepdims=True)
    tied_secondary = np.where(primary == best, secondary, np.inf)
    return np.asarray(tied_secondary.argmin(axis=1), dtype=np.intp)


def _check(quality: FloatArray, cost: FloatArray, willingness_to_pay: float) -> None:
    if quality.shape != cost.shape or quality.ndim != 2:
        raise ValueError(f"predicted quality {quality.shape} and cost {cost.shape} must both be (n, m)")
    if quality.shape[1] == 0:
        raise ValueError("no models to choose from")
    if math.isnan(willingness_to_pay) or willingness_to_pay < 0.0:
        raise ValueError(f"willingness to pay must be ≥ 0, got {willingness_to_pay}")
