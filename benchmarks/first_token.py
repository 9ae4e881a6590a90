"""Streamed time to first token: what a gateway adds before the first word of an answer reaches a client.

:func:`first_token_times` streams unique short prompts (``benchmarks/load_prompts.py``) one after another
over one connection with an httpx client, for a bounded number of requests, and times each request's first
chunk that carries content (not a role-only chunk, which a gateway could send before calling upstream).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass

import httpx
import numpy as np

from benchmarks.load_prompts import chat_bodies, new_run_id, prompt_pool, request_tag, with_tag


@dataclass(frozen=True)
class FirstTokenTimes:
    """Streamed time to first content token at 1 connection, in ms, over ``requests`` timed requests."""

    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


def first_token_times(url: str, model: str, requests: int, warm_up: int = 20) -> FirstTokenTimes:
    """Stream ``warm_up + requests`` unique short prompts one after another over one connection; time
    each request's first chunk that carries content. A request fails when it is not answered 200 or
    its stream carries no content."""
    bodies = chat_bodies(model, prompt_pool("short"))
    run, times, failures = new_run_id(), [], 0
    with httpx.Client(timeout=30) as client:
        for n in range(1, warm_up + requests + 1):
            body = {**with_tag(bodies[n % len(bodies)], request_tag(run, 0, n)), "stream": True}
            started, first = time.perf_counter(), None
            with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
                for line in response.iter_lines():  # read to the end: the connection is kept
                    if first is None and response.status_code == 200 and _carries_content(line):
                        first = time.perf_counter() - started
            if first is None:
                failures += 1
            elif n > warm_up:
                times.append(first * 1000.0)
    p50, p99 = np.percentile(times, [50, 99]) if times else (float("nan"), float("nan"))
    return FirstTokenTimes(float(p50), float(p99), len(times), failures)


def _carries_content(line: str) -> bool:
    if not line.startswith("data:") or line.removeprefix("data:").strip() == "[DONE]":
        return False
    choices = json.loads(line.removeprefix("data:")).get("choices") or [{}]
    return bool((choices[0].get("delta") or {}).get("content"))


def measure_first_tokens(targets: dict[str, tuple[str, str]], requests: int) -> dict[str, FirstTokenTimes]:
    """TTFT per label of a (url, model) target, printed as it comes."""
    times = {}
    for label, (url, model) in targets.items():
        times[label] = t = first_token_times(url, model, requests)
        print(
            f"  TTFT, {label:30s} p50 {t.p50_ms:7.2f} ms, p99 {t.p99_ms:7.2f} ms "
            f"({t.requests} streamed, {t.failures} failed)",
            flush=True,
        )
    return times


def first_token_overheads(first_tokens: dict[str, FirstTokenTimes]) -> dict[str, float]:
    """The p50 time to first token each target adds over each one measured before it, in ms."""
    return {
        f"TTFT p50 added by {later} over {earlier} (ms)": first_tokens[later].p50_ms
        - first_tokens[earlier].p50_ms
        for earlier, later in itertools.combinations(first_tokens, 2)
    }
