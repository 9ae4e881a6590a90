"""A gateway under wrk load, and the gateway's own CPU per request read from /proc.

A machine shared with other work drifts in speed between runs, so req/s alone cannot tell a 5 %
change; the serving process's user + system CPU per request, over the same load, can: its ratio is what
the req/s ratio would be on a steady machine where the gateway is the bottleneck. Used by
``bench_key_enforcement`` (keys on against off) and ``bench_revisions`` (two source trees).
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.load_prompts import chat_bodies, prompt_pool
from benchmarks.local_servers import drain, upstream_calls
from benchmarks.wrk_load import run_load

CONNECTIONS = (1, 16)
WARM_UP_SECONDS = 2


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    url: str, pid: int, upstream: str, headers: dict[str, str], seconds: int, model: str = "echo"
) -> dict[int, dict[str, float]]:
    """req/s, p50 (ms) and the gateway's CPU µs per request by connection count (:data:`CONNECTIONS`),
    each after a :data:`WARM_UP_SECONDS` warm-up, unique short prompts to ``model``; failed requests
    counted. ``pid`` is the serving process (one worker), ``upstream`` the mock it calls (drained after
    each run, so a run's last requests are answered before the next begins)."""
    bodies = chat_bodies(model, prompt_pool("short"))
    figures = {}
    for connections in CONNECTIONS:
        for duration in (WARM_UP_SECONDS, seconds):
            calls, cpu_before = upstream_calls(upstream), cpu_seconds(pid)
            result = run_load(
                url + "/v1/chat/completions",
                bodies,
                connections=connections,
                seconds=duration,
                headers=headers,
            )
            drain(upstream, calls + result.started, quiet_seconds=1.0)
            cpu_us = (cpu_seconds(pid) - cpu_before) / max(result.started, 1) * 1e6
        figures[connections] = {
            "rps": result.requests_per_second,
            "p50_ms": result.p50_ms,
            "cpu_us": cpu_us,
            "failed": result.errors,
        }
    return figures
