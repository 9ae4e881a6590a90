"""The routing proxy (``routeyard.gateway``): HTTP, the request lifecycle, routers, backends, usage.

May import evaluation, judges, policy, predictor, registry and arrays (docs/architecture.md §3).
"""
