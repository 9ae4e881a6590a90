"""The gateway's own time per request, as its ``x-routeyard-overhead-ms`` header reports it.

:func:`overhead_times` sends a bounded number of requests one after another over one connection (each
with a unique tag when asked, so no prompt repeats), reads each to its end and gathers the header of the
ones after a warm-up: p50 and p99 in ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import numpy as np

from benchmarks.load_prompts import ChatBody, new_run_id, request_tag, with_tag

OVERHEAD_HEADER = "x-routeyard-overhead-ms"


@dataclass(frozen=True)
class OverheadTimes:
    """The ``x-routeyard-overhead-ms`` header over ``requests`` answered requests at 1 connection (ms);
    ``missing``: requests answered without it or not answered 200."""

    p50_ms: float
    p99_ms: float
    requests: int
    missing: int


def overhead_times(
    url: str, bodies: list[ChatBody], requests: int, *, unique: bool, warm_up: int = 20
) -> OverheadTimes:
    """Send ``warm_up + requests`` of ``bodies`` (cycled; tagged unique when ``unique``) to the gateway at
    ``url`` one after another, each read to its end; the header of those after the warm-up."""
    run, times, missing = new_run_id(), [], 0
    with httpx.Client(timeout=30) as client:
        for n in range(1, warm_up + requests + 1):
            body = bodies[n % len(bodies)]
            if unique:
                body = with_tag(body, request_tag(run, 0, n))
            with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                response.read()
                header = response.headers.get(OVERHEAD_HEADER) if response.status_code == 200 else None
            if header is None:
                missing += 1
            elif n > warm_up:
                times.append(float(header))
    p50, p99 = np.percentile(times, [50, 99]) if times else (float("nan"), float("nan"))
    return OverheadTimes(float(p50), float(p99), len(times), missing)
