"""What the soak (``benchmarks/soak_gateway.py``) measures and checks, and the Redis crashes it causes:
the gateway's RSS (its process tree, from /proc), sampled and summed up; Redis killed and started
again on a schedule; the request count from ``/metrics``; the usage log's Redis stream read back and
checked for lost and duplicated records against what the clients saw (``benchmarks/soak_traffic.py``);
the gateway's log searched for warnings and tracebacks. The processes are
``benchmarks/soak_processes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.soak_traffic import Tally
from routeyard.testing.redis_server import RedisServer

STREAM_KEY, FEEDBACK_KEY = "routeyard:requests", "routeyard:feedbacks"
REDIS_BACK_BEFORE_END_SECONDS = 5.0


@dataclass(frozen=True)
class Outage:
    """One Redis crash: killed and back, seconds since the traffic started."""

    killed_at: float
    back_at: float


@dataclass(frozen=True)
class RssSample:
    """The gateway's resident memory ``rss_bytes``, ``at`` seconds since the traffic started."""

    at: float
    rss_bytes: int


# -- memory


def process_tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and its descendants (from /proc; 0 for one that has exited)."""
    total = 0
    for member in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _process_tree(pid: int) -> list[int]:
    tree: list[int] = []
    pending = [pid]
    while pending and len(tree) < 1000:
        member = pending.pop()
        tree.append(member)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{member}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
    return tree


def rss_summary(samples: list[RssSample], warm_up: float) -> dict[str, Any]:
    """RSS at the end of the warm-up (the first sample at or after ``warm_up`` s), at the end (the last
    sample), the maximum after the warm-up and overall (MiB), and the growth in % (None without a
    sample after the warm-up)."""
    after = [s for s in samples if s.at >= warm_up]
    mib = 1024.0 * 1024.0
    summary: dict[str, Any] = {"warm_up_seconds": warm_up, "samples": len(samples)}
    summary["max_mib"] = max((s.rss_bytes for s in samples), default=0) / mib
    if len(after) < 2:
        return {**summary, "at_warm_up_mib": None, "at_end_mib": None, "growth_percent": None}
    first, last = after[0], after[-1]
    return {
        **summary,
        "at_warm_up_mib": first.rss_bytes / mib,
        "at_warm_up_seconds": first.at,
        "at_end_mib": last.rss_bytes / mib,
        "at_end_seconds": last.at,
        "max_after_warm_up_mib": max(s.rss_bytes for s in after) / mib,
        "growth_percent": 100.0 * (last.rss_bytes - first.rss_bytes) / first.rss_bytes,
    }


async def sample_rss(pid: int, started: float, deadline: float, every: float, out: list[RssSample]) -> None:
    """Append the RSS of ``pid``'s tree to ``out`` every ``every`` s until ``deadline`` (monotonic), and
    once more at the end."""
    while True:
        now = time.monotonic()
        out.append(RssSample(round(now - started, 1), process_tree_rss(pid)))
        if now >= deadline:
            return
        await asyncio.sleep(min(every, max(deadline - now, 0.0)))


# -- Redis crashes


def outage_schedule(seconds: float, every: float, down: float) -> list[float]:
    """When to kill Redis (seconds into the traffic): every ``every`` s, each outage (``down`` s) over
    at least :data:`REDIS_BACK_BEFORE_END_SECONDS` before the end."""
    if every <= 0:
        return []
    kills, at = [], every
    while at + down + REDIS_BACK_BEFORE_END_SECONDS <= seconds:
        kills.append(at)
        at += every
    return kills


async def crash_redis(
    server: RedisServer, schedule: list[float], down: float, started: float, out: list[Outage]
) -> None:
    """Kill ``server`` (SIGKILL) at each time of ``schedule`` and start it again ``down`` s later on the
    same port and directory; each outage is appended to ``out``. Redis is running when this returns,
    even when cancelled."""
    for at in schedule:
        await asyncio.sleep(max(0.0, started + at - time.monotonic()))
        await asyncio.to_thread(server.kill)
        killed = time.monotonic()
        try:
            await asyncio.sleep(down)
        finally:
            await asyncio.to_thread(server.start)
        out.append(Outage(round(killed - started, 1), round(time.monotonic() - started, 1)))


# -- the checks


def scrape_metrics(url: str) -> dict[str, float]:
    """From the gateway's ``/metrics``: every request counted (``requests``), the usage log's
    ``buffered`` and ``dropped`` entries."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found = {"requests": 0.0, "buffered": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("routeyard_requests_total{"):
            found["requests"] += float(value)
        elif name == "routeyard_usage_log_buffered":
            found["buffered"] = float(value)
        elif name == "routeyard_usage_log_dropped_total" or name == "routeyard_usage_log_dropped":
            found["dropped"] = float(value)
    return found


def settled_metrics(url: str, limit_seconds: float = 30.0) -> dict[str, float]:
    """:func:`scrape_metrics` once the request count has not moved for 1 s (requests whose client
    gave up may still be finishing), at most ``limit_seconds``."""
    deadline, last = time.monotonic() + limit_seconds, scrape_metrics(url)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = scrape_metrics(url)
        if now["requests"] == last["requests"]:
            return now
        last = now
    return last


def stream_request_ids(server: RedisServer, key: str = STREAM_KEY) -> list[str]:
    """Every ``request_id`` in the stream ``key``, in order (read in pages)."""
    redis = server.client()
    ids: list[str] = []
    start = "-"
    for _ in range(100_000):  # pages of 10,000: up to 10⁹ entries
        page = redis.xrange(key, min=start, max="+", count=10_000)
        if not page:
            break
        ids += [str((fields or {}).get("request_id", "")) for _, fields in page]
        start = f"({page[-1][0]!s}"  # exclusive: after the last entry read
    return ids


def loss_check(
    tally: Tally, metrics: dict[str, float], stream_ids: list[str], feedbacks: int
) -> dict[str, Any]:
    """Records lost (the larger of: answered ids missing from the stream; records the gateway logged
    that the stream lacks), ids twice in the stream, feedbacks lost."""
    in_stream = set(stream_ids)
    missing = sorted(tally.answered - in_stream)
    logged = int(metrics["requests"]) - tally.refused
    return {
        "answered_ids": len(tally.answered),
        "answered_missing_from_stream": len(missing),
        "missing_examples": missing[:5],
        "gateway_logged": logged,
        "stream_records": len(stream_ids),
        "logged_missing_from_stream": max(0, logged - len(stream_ids)),
        "stream_beyond_logged": max(0, len(stream_ids) - logged),
        "duplicate_ids_in_stream": len(stream_ids) - len(in_stream),
        "records_lost": max(len(missing), logged - len(stream_ids)),  # the first are among the second
        "feedbacks_accepted": tally.feedback_accepted,
        "feedbacks_in_stream": feedbacks,
        "feedbacks_lost": max(0, tally.feedback_accepted - feedbacks),
    }


def log_findings(log: Path) -> dict[str, int]:
    """From the gateway's output: warnings that Redis was unavailable, entries unwritten at shutdown,
    batches dropped, tracebacks."""
    text = log.read_text(errors="replace")
    unwritten = [int(n) for n in re.findall(r"usage log: closed with (\d+) entries unwritten", text)]
    return {
        "redis_unavailable_warnings": text.count("usage log: Redis unavailable"),
        "unwritten_at_shutdown": sum(unwritten),
        "dropped_batch_lines": text.count("usage log: dropped"),
        "tracebacks": text.count("Traceback"),
    }
