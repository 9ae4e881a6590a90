"""Judges that score an answer in [0, 1] (``routeyard.judges``).

May import policy, predictor, registry and arrays (docs/architecture.md §3).
"""
