"""Outcome tables, embedders, quality/cost predictors and their artifacts (``routeyard.predictor``).

May import only routeyard.registry and routeyard.arrays (docs/architecture.md §3).
"""
