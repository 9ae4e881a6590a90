"""The willingness-to-pay sweep: a predictive router's curve over a grid of w.

For each w the router sends every prompt to the model chosen by the gateway's own decision rule
(:func:`routeyard.policy.willingness_to_pay.choose_by_willingness_to_pay`) from *predicted* quality and
cost, and is scored on the *recorded* quality and cost of what it chose.
"""

from __future__ import annotations

from routeyard.arrays import FloatArray
from routeyard.evaluation.points import Curve, curve_of_choices
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay


def willingness_to_pay_curve(
    router: str,
    predicted_quality: FloatArray,
    predicted_cost: FloatArray,
    quality: FloatArray,
    cost: FloatArray,
    grid: FloatArray,
) -> Curve:
    """The router's point at every w of ``grid`` (with every prompt's outcome); all tables (n, m),
    ``grid`` in $ per unit quality."""
    choices = [choose_by_willingness_to_pay(predicted_quality, predicted_cost, float(w)) for w in grid]
    return curve_of_choices(router, quality, cost, choices, [f"w={w:g}" for w in grid])
