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

Needs ``redis-server`` (``apt-get install -y redis-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.local_servers import running
from benchmarks.machine import describe_machine
from benchmarks.soak_traffic import FIXED_ROUTER, KNN_ROUTER, Client, Tally, drive_traffic
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port

RSS_GROWTH_GOAL_PERCENT = 5.0
EMBEDDER = "minilm-static"  # the gateway's default
STREAM_KEY, FEEDBACK_KEY = "routeyard:requests", "routeyard:feedbacks"
CLIENT_TIMEOUT_SECONDS = 30.0
REDIS_BACK_BEFORE_END_SECONDS = 5.0
SHUTDOWN_LIMIT_SECONDS = 60.0
CLEAN_EXITS = (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM after its graceful shutdown
BACKEND_PRICES = ((0.5, 1.5), (3.0, 15.0), (10.0, 30.0), (0.2, 0.2))  # $ per million in, out; in turn


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


@dataclass(frozen=True)
class Soaked:
    """What :func:`soak` measured: the clients' tally, the RSS samples, the Redis outages, how long the
    traffic ran, and the faults the upstream injected (by name)."""

    tally: Tally
    samples: list[RssSample]
    outages: list[Outage]
    traffic_seconds: float
    faults: dict[str, int]


# -- the servers


def train_knn(directory: Path) -> Path:
    """A KNN artifact trained as ``routeyard train`` trains (``train_selected``) on the bundled sample
    with :data:`EMBEDDER`, saved in ``directory / "knn"``; its path."""
    from routeyard.evaluation.selected_training import train_selected
    from routeyard.predictor.artifact import save_artifact
    from routeyard.predictor.embedder_choice import make_embedder

    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    started = time.perf_counter()
    trained = train_selected(table, make_embedder(EMBEDDER, directory / "train-cache"), "knn").trained
    save_artifact(trained.predictor, trained.manifest, directory / "knn")
    print(f"KNN artifact trained in {time.perf_counter() - started:.1f} s", flush=True)
    return directory / "knn"


def backend_names() -> tuple[str, ...]:
    """The backends: the sample's 11 models (a KNN artifact trained on it names them)."""
    return tuple(load_routerbench_table(SAMPLE_TABLE, with_responses=False).models)


def gateway_config(directory: Path, upstream: str, redis_url: str, artifact: Path | None) -> Path:
    """routeyard.yaml: every backend on ``upstream`` with a price from :data:`BACKEND_PRICES`, the fixed
    router (to the first backend), the KNN router over ``artifact`` when given, the usage log in Redis
    at ``redis_url``; a fresh ``cache_dir``."""
    backends = [
        {
            "name": name,
            "base_url": upstream + "/v1",
            "model": "fault-upstream",
            "input_usd_per_million": BACKEND_PRICES[i % len(BACKEND_PRICES)][0],
            "output_usd_per_million": BACKEND_PRICES[i % len(BACKEND_PRICES)][1],
            "timeout_seconds": 10.0,
        }
        for i, name in enumerate(backend_names())
    ]
    routers: list[dict[str, Any]] = [{"name": FIXED_ROUTER, "kind": "fixed", "backend": backends[0]["name"]}]
    if artifact is not None:
        routers.append(
            {"name": KNN_ROUTER, "kind": "knn", "artifact": str(artifact), "willingness_to_pay": 0.05}
        )
    settings = {
        "backends": backends,
        "routers": routers,
        "redis_url": redis_url,
        "embedder": EMBEDDER,
        "cache_dir": str(directory / "serving-cache"),
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@contextlib.contextmanager
def gateway_process(config: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``routeyard serve --config config`` (one worker) on a free port, its output into ``log``; yields
    the process and its URL once ``/readyz`` answers 200 (≤ 5 min). No ``ROUTEYARD_*`` variable of ours
    reaches it. Killed at the end of the block if :func:`stop_gateway` has not stopped it."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [_bin("routeyard"), "serve", "--config", str(config), "--port", url.rsplit(":", 1)[1]]
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTEYARD_")}
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_ready(process, url + "/readyz", log)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path, limit_seconds: float = 300.0) -> None:
    """Return once ``url`` answers 200; raise RuntimeError (with the log's tail) when ``process`` exits
    first or ``limit_seconds`` pass."""
    deadline = time.monotonic() + limit_seconds
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"the gateway did not become ready:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.2)


def stop_gateway(process: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM, then wait (≤ :data:`SHUTDOWN_LIMIT_SECONDS`): the usage log flushes on the way out.
    Returns the exit code (None: it had to be killed) and the seconds it took. uvicorn re-raises the
    SIGTERM once its graceful shutdown is over, so a clean stop exits with -15 (:data:`CLEAN_EXITS`)."""
    started = time.monotonic()
    process.terminate()
    try:
        code: int | None = process.wait(timeout=SHUTDOWN_LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        code = None
    return code, time.monotonic() - started


def upstream_command(port: int, seed: int) -> list[str]:
    """The fault-injecting upstream as a process on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "benchmarks.fault_upstream", "--port", str(port), "--seed", str(seed)]


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


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


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
