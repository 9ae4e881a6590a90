"""Benchmark: the gateway's throughput with the Redis usage log on versus off (issue 6: ≤ 10 % loss).

The same load as ``bench_gateway`` (wrk, short prompts, passthrough to a fast local mock upstream, one
uvicorn worker) against two gateways that differ only in ``redis_url``: none (in-memory log) and a real
``redis-server`` on loopback. After the run the Redis stream must hold one record per answered request.

    python -m benchmarks.bench_usage_log [--seconds 10] [--rounds 3]

Rates on a shared 2-core machine drift by ±15 %: the two gateways take turns, round after round, and
the medians are compared.

Needs ``wrk`` and ``redis-server`` (``apt-get install -y wrk redis-server``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.bench_gateway import PASSTHROUGH_MODEL, measure, running
from benchmarks.local_servers import mock_upstream_command
from benchmarks.machine import describe_machine
from benchmarks.wrk_load import LoadResult
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port


def passthrough_config(directory: Path, upstream: str, redis_url: str | None) -> Path:
    """routeyard.yaml with one backend on the mock, and the Redis log when ``redis_url`` is given."""
    settings: dict[str, object] = {
        "backends": [{"name": PASSTHROUGH_MODEL, "base_url": upstream + "/v1", "model": "echo"}],
    }
    if redis_url is not None:
        settings["redis_url"] = redis_url
    path = directory / f"routeyard-{'redis' if redis_url else 'memory'}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        try:
            results = _alternate(Path(tmp), redis_server, args.seconds, args.rounds)
            logged = redis_server.client().xlen("routeyard:requests")
        finally:
            redis_server.stop()
    served = sum(r.requests - r.errors for run in results["in Redis"] for r in run.values())
    print(f"  records in the Redis stream: {logged} (answered requests, warm-ups not counted: {served})")
    for connections in (1, 16):
        off = statistics.median(run[connections].requests_per_second for run in results["in memory"])
        on = statistics.median(run[connections].requests_per_second for run in results["in Redis"])
        print(
            f"  {connections:2d} conn, medians of {args.rounds} rounds: {off:.0f} req/s, log in memory; "
            f"{on:.0f} in Redis: {100 * (off - on) / off:.1f} % lost (target ≤ 10 %)"
        )
    return 0


def _alternate(
    tmp: Path, redis_server: RedisServer, seconds: int, rounds: int
) -> dict[str, list[dict[int, LoadResult]]]:
    """Load results per log kind, one per round; the two gateways take turns so drift hits both alike."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    upstream = f"http://127.0.0.1:{free_port()}"
    results: dict[str, list[dict[int, LoadResult]]] = {"in memory": [], "in Redis": []}
    with running(mock_upstream_command(upstream), env, upstream, "/calls"):
        for round_number in range(1, rounds + 1):
            for label, redis_url in (("in memory", None), ("in Redis", redis_server.url)):
                gateway = f"http://127.0.0.1:{free_port()}"
                config = passthrough_config(tmp, upstream, redis_url)
                serve = [str(bin_dir / "routeyard"), "serve", "--config", str(config)]
                serve += ["--port", gateway.rsplit(":", 1)[1]]
                with running(serve, env, gateway, "/readyz"):
                    name = f"log {label}, round {round_number}"
                    results[label].append(measure(name, gateway, PASSTHROUGH_MODEL, seconds))
                    time.sleep(2)  # let the writer drain before the gateway stops
    return results


if __name__ == "__main__":
    raise SystemExit(main())
