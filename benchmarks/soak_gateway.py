"""Benchmark: a soak of the gateway under mixed traffic, upstream faults and Redis crashes (issue 15).

For ``--seconds`` (default 600) on loopback, ``--concurrency`` clients (default 8) send mixed traffic to
``routeyard serve`` (one worker, a subprocess): whole and streamed chat completions through a KNN
router (``--router knn``, trained here on the bundled RouterBench sample, ≈ 10 s) or a fixed one, through
a fixed router, and to a backend by name; feedback on answered requests; ``GET /v1/models``; and bad
requests (refused at the door). Every chat prompt is unique (``benchmarks/load_prompts.py``: 3 short
prompts in 4, a RouterBench one in 4), so no embedding cache answers for it.

The 11 backends (priced) all call one fault-injecting upstream (``benchmarks/fault_upstream.py``: 500,
429, slow, dropped connections, malformed JSON, bodies cut mid-way, trickled answers). The gateway's
usage log goes to a real ``redis-server``, which is killed (SIGKILL) every ``--redis-every`` seconds and
started again on the same port and directory ``--redis-down`` seconds later (the last outage ends at
least 5 s before the traffic does).

Measured:

- the gateway's RSS (its process tree, from /proc) every ``--sample-every`` seconds: at the end of the
  warm-up (``--warm-up``, the first sample at or after it), at the end, the maximum, and the growth
  from the first to the second (goal: ≤ 5 %);
- requests by kind and HTTP status, the faults the upstream injected, the Redis outages;
- after the traffic, the gateway is stopped with SIGTERM (its usage log flushes for up to 5 s), then the
  Redis stream ``routeyard:requests`` is read. Records lost (goal: 0) = the larger of: request ids that
  came back in an ``x-routeyard-request-id`` header but are not in the stream; records the gateway logged
  that the stream lacks (logged = ``routeyard_requests_total`` from ``/metrics`` minus the chat requests
  the client saw refused at the door, which are counted but by design not logged; the first figure's
  records are among them). Also checked: no request
  id twice in the stream, and every accepted feedback in ``routeyard:feedbacks``.

Exit code 1 when the RSS grew more than 5 % or anything was lost or duplicated.

    python -m benchmarks.soak_gateway [--seconds 600] [--concurrency 8] [--redis-every 90]
                                      [--redis-down 10] [--warm-up 60] [--sample-every 5]
                                      [--router knn|fixed] [--seed 0] [--json PATH] [--logs DIR]

This module runs the soak and reports; the processes are ``benchmarks/soak_processes.py``, the
measurements and checks ``benchmarks/soak_measures.py``, the traffic ``benchmarks/soak_traffic.py``.
Needs ``redis-server`` (``apt-get install -y redis-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.local_servers import running
from benchmarks.machine import describe_machine
from benchmarks.soak_measures import (
    FEEDBACK_KEY,
    Outage,
    RssSample,
    crash_redis,
    log_findings,
    loss_check,
    outage_schedule,
    rss_summary,
    sample_rss,
    settled_metrics,
    stream_request_ids,
)
from benchmarks.soak_processes import (
    CLEAN_EXITS,
    backend_names,
    gateway_config,
    gateway_process,
    stop_gateway,
    train_knn,
    upstream_command,
)
from benchmarks.soak_traffic import FIXED_ROUTER, KNN_ROUTER, Client, Tally, drive_traffic
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port

RSS_GROWTH_GOAL_PERCENT = 5.0
CLIENT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Soaked:
    """What :func:`soak` measured: the clients' tally, the RSS samples, the Redis outages, how long the
    traffic ran, and the faults the upstream injected (by name)."""

    tally: Tally
    samples: list[RssSample]
    outages: list[Outage]
    traffic_seconds: float
    faults: dict[str, int]


# -- the run


async def soak(args: argparse.Namespace, gateway: str, pid: int, upstream: str, redis: RedisServer) -> Soaked:
    """Traffic, RSS samples and Redis crashes at once for ``args.seconds``; what each measured."""
    tally, samples, outages = Tally(), list[RssSample](), list[Outage]()
    started = time.monotonic()
    deadline = started + args.seconds
    schedule = outage_schedule(args.seconds, args.redis_every, args.redis_down)
    limits = httpx.Limits(
        max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2
    )
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS, limits=limits) as http:
        client = Client(http, gateway, KNN_ROUTER if args.router == "knn" else FIXED_ROUTER, backend_names())
        crashes = asyncio.create_task(crash_redis(redis, schedule, args.redis_down, started, outages))
        sampler = asyncio.create_task(sample_rss(pid, started, deadline, args.sample_every, samples))
        await drive_traffic(client, deadline, args.concurrency, args.max_requests, args.seed, tally)
        traffic_seconds = time.monotonic() - started
        await sampler
        if not crashes.done():  # never, by the schedule; but Redis must be up for the flush
            crashes.cancel()
            await asyncio.gather(crashes, return_exceptions=True)
    faults = httpx.get(upstream + "/calls", timeout=10).json()
    return Soaked(tally, samples, outages, traffic_seconds, faults)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start everything, soak, stop the gateway, check the stream; the results."""
    artifact = train_knn(tmp) if args.router == "knn" else None
    upstream_port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    redis = RedisServer(tmp / "redis").start()
    try:
        with running(
            upstream_command(upstream_port, args.seed),
            dict(os.environ),
            upstream,
            "/calls",
            tmp / "upstream.log",
        ):
            config = gateway_config(tmp, upstream, redis.url, artifact)
            with gateway_process(config, tmp / "gateway.log") as (process, gateway):
                print(f"gateway ready (pid {process.pid}); soaking for {args.seconds} s", flush=True)
                measured = asyncio.run(soak(args, gateway, process.pid, upstream, redis))
                metrics = settled_metrics(gateway)
                exit_code, shutdown_seconds = stop_gateway(process)
        stream_ids = stream_request_ids(redis)
        feedbacks = int(redis.client().xlen(FEEDBACK_KEY))
    finally:
        redis.stop()
    tally = measured.tally
    return {
        "machine": describe_machine(),
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "traffic_seconds": round(measured.traffic_seconds, 1),
        "sent": dict(tally.sent),
        "statuses": dict(sorted(tally.statuses.items())),
        "stream_error_events": tally.stream_errors,
        "refused_at_the_door": tally.refused,
        "unlogged_errors": tally.unlogged_errors,
        "faults_injected": measured.faults,
        "redis_outages": [asdict(o) for o in measured.outages],
        "rss": rss_summary(measured.samples, args.warm_up),
        "rss_samples": [asdict(s) for s in measured.samples],
        "metrics_before_shutdown": metrics,
        "gateway_exit_code": exit_code,
        "gateway_stopped_cleanly": exit_code in CLEAN_EXITS,
        "shutdown_seconds": round(shutdown_seconds, 2),
        "gateway_log": log_findings(tmp / "gateway.log"),
        "usage_log": loss_check(tally, metrics, stream_ids, feedbacks),
    }


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    """Each goal, met or not: RSS growth ≤ 5 % after the warm-up, no record lost, none duplicated, no
    feedback lost."""
    growth = results["rss"]["growth_percent"]
    usage = results["usage_log"]
    return {
        "rss_growth_within_5_percent": growth is not None and growth <= RSS_GROWTH_GOAL_PERCENT,
        "no_record_lost": usage["records_lost"] == 0,
        "no_record_duplicated": usage["duplicate_ids_in_stream"] == 0,
        "no_feedback_lost": usage["feedbacks_lost"] == 0,
    }


def print_summary(results: dict[str, Any]) -> None:
    """The figures, then the verdicts."""
    rss, usage, sent = results["rss"], results["usage_log"], results["sent"]
    print(f"\nmachine: {results['machine']}")
    print(f"traffic: {sum(sent.values())} requests in {results['traffic_seconds']} s: {sent}")
    print(f"statuses: {results['statuses']}")
    print(
        f"streams ended by an error event: {results['stream_error_events']}; refused at the door: "
        f"{results['refused_at_the_door']}; errors neither logged nor refused: {results['unlogged_errors']}"
    )
    print(f"faults injected by the upstream: {results['faults_injected']}")
    outages = [(o["killed_at"], o["back_at"]) for o in results["redis_outages"]]
    print(f"Redis outages (killed, back; s): {outages}")
    growth = rss["growth_percent"]
    print(
        f"gateway RSS: {_mib(rss['at_warm_up_mib'])} at the end of the warm-up ({rss['warm_up_seconds']} s), "
        f"{_mib(rss['at_end_mib'])} at the end, max {_mib(rss['max_mib'])}; growth "
        f"{'—' if growth is None else f'{growth:+.2f} %'} ({rss['samples']} samples)"
    )
    clean = "clean" if results["gateway_stopped_cleanly"] else "NOT CLEAN"
    print(
        f"shutdown: exit code {results['gateway_exit_code']} ({clean}) in {results['shutdown_seconds']} s; "
        f"metrics before it: {results['metrics_before_shutdown']}; log: {results['gateway_log']}"
    )
    print(
        f"usage log: {usage['answered_ids']} answered ids, {usage['answered_missing_from_stream']} missing "
        f"from the stream; {usage['gateway_logged']} logged by the gateway, {usage['stream_records']} in "
        f"the stream, {usage['duplicate_ids_in_stream']} duplicated; feedbacks {usage['feedbacks_accepted']} "
        f"accepted, {usage['feedbacks_in_stream']} in the stream"
    )
    print(f"records lost: {usage['records_lost']}")
    for goal, met in verdicts(results).items():
        print(f"  {goal:32s} {'met' if met else 'MISSED'}")


def keep_logs(directory: Path, destination: Path) -> None:
    """Copy the gateway's and the upstream's output from ``directory`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("gateway.log", "upstream.log"):
        if (directory / name).exists():
            shutil.copyfile(directory / name, destination / name)


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    print(f"machine: {describe_machine()}; router {args.router}; {args.concurrency} clients", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results = run(args, Path(tmp))
        finally:
            if args.logs is not None:
                keep_logs(Path(tmp), args.logs)
    results["verdicts"] = verdicts(results)
    print_summary(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(results["verdicts"].values()) else 1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the traffic runs")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--redis-every", type=float, default=90.0, help="kill Redis every N s (0: never)")
    parser.add_argument("--redis-down", type=float, default=10.0, help="seconds Redis stays down")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds before the RSS baseline")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--router", choices=("knn", "fixed"), default="knn", help="the main router")
    parser.add_argument("--max-requests", type=int, default=5_000_000, help="stop after this many requests")
    parser.add_argument("--seed", type=int, default=0, help="seeds the traffic and the upstream's faults")
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    parser.add_argument("--logs", type=Path, help="copy the gateway's and the upstream's output here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
