"""Usage records as the gateway logs them, for the usage-log and export tests."""

import time

from routeyard.gateway.usage import Attempt, RouteRecord


def request_id(i):
    return f"req_{i:032x}"


def answered(i, cost=0.002):
    """Request ``i``: router-knn sent it to ``cheap``, which answered 200 at ``cost`` $; prompt kept."""
    return RouteRecord(
        request_id(i),
        time.time(),
        "router-knn",
        "cheap",
        200,
        "b" * 64,
        cost_usd=cost,
        attempts=(Attempt("cheap", "ok", cost, 0.01),),
        prompt_turns=(f"What is {i} plus {i}?",),
    )
