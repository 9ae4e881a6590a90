"""What key enforcement costs: passthrough req/s and p50 with virtual keys on against off (issue 15).

One mock upstream, one real redis-server, and three ``routeyard serve`` configs, each measured with wrk
(unique prompts, ``benchmarks/load_prompts.py``) at 1 and 16 connections, in rounds that alternate the
configs so that a host whose speed drifts biases none of them:

- ``off``: no client keys (the API is open);
- ``redis``: virtual keys in Redis, the key with a $ budget, rpm and tpm far from reached, so that every
  request pays the whole path: key lookup (cached), one reserve script before the call, one settle script
  after it;
- ``sqlite``: the same key in the SQLite store (one host).

The target (issue 15): passthrough req/s at 16 connections with keys on ≥ 0.9 × keys off. Because this
machine's speed drifts between runs, the gateway's own CPU per request (from /proc, over the 16-connection
run) is reported too: its ratio (off / on) is what the req/s ratio would be on a steady machine where
the gateway is the bottleneck.

    python -m benchmarks.bench_key_enforcement [--seconds 10] [--rounds 2] [--json results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from benchmarks.gateway_cpu import measure
from benchmarks.local_servers import mock_upstream_command, running
from benchmarks.machine import describe_machine
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port

ADMIN_KEY = "sk-bench-admin"
CONFIGS = ("off", "redis", "sqlite")
UNREACHED = {"budget_day_usd": 1e9, "budget_month_usd": 1e9, "rpm": 10**9, "tpm": 10**12}


def gateway_config(directory: Path, name: str, upstream: str, redis_url: str) -> Path:
    """routeyard.yaml for config ``name``: one backend on the mock upstream, keys as ``name`` says."""
    settings: dict[str, object] = {
        "backends": [
            {"name": "echo", "base_url": upstream + "/v1", "model": "echo", "input_usd_per_million": 1.0}
        ],
        "cache_dir": str(directory / "cache"),
    }
    if name != "off":
        settings |= {"virtual_keys": True, "admin_key_env": "BENCH_ADMIN_KEY"}
        settings |= (
            {"redis_url": redis_url} if name == "redis" else {"keys_db": str(directory / f"{name}.db")}
        )
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@contextlib.contextmanager
def serving(config: Path, log: Path) -> Iterator[tuple[str, int]]:
    """``routeyard serve --config config`` on a free loopback port until the block ends: its URL and
    pid (one worker: the serving process itself)."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(Path(sys.executable).parent / "routeyard"), "serve", "--config", str(config)]
    command += ["--port", url.rsplit(":", 1)[1]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEYARD_")} | {
        "BENCH_ADMIN_KEY": ADMIN_KEY
    }
    with running(command, env, url, "/readyz", log) as process:
        yield url, process.pid


def client_headers(url: str, name: str) -> dict[str, str]:
    """The Authorization header of a fresh key with unreached limits (none for ``off``)."""
    if name == "off":
        return {}
    response = httpx.post(
        url + "/admin/keys",
        json={"name": "bench", **UNREACHED},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['key']}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    runs: dict[str, list[dict[int, dict[str, float]]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis_server = RedisServer(directory / "redis").start()
        upstream = f"http://127.0.0.1:{free_port()}"
        mock = mock_upstream_command(upstream)
        try:
            with running(mock, dict(os.environ), upstream, "/calls", directory / "mock.log"):
                for round_number in range(args.rounds):
                    for name in CONFIGS:
                        config = gateway_config(directory, name, upstream, redis_server.url)
                        with serving(config, directory / f"{name}.log") as (url, pid):
                            figures = measure(url, pid, upstream, client_headers(url, name), args.seconds)
                        runs[name].append(figures)
                        print(f"round {round_number + 1} {name:6s} " + _line(figures), flush=True)
        finally:
            redis_server.stop()
    median, ratios, lines = _summary(runs)
    print("\n".join(lines))
    if args.json:
        record = {"machine": describe_machine(), "runs": runs, "median": median, "ratios": ratios}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _line(figures: dict[int, dict[str, float]]) -> str:
    return "  ".join(
        f"{c} conn {f['rps']:7.1f} req/s p50 {f['p50_ms']:6.2f} ms {f['cpu_us']:5.0f} µs CPU/req "
        f"({f['failed']:.0f} failed)"
        for c, f in figures.items()
    )


def _summary(
    runs: dict[str, list[dict[int, dict[str, float]]]],
) -> tuple[dict[str, dict[str, float]], dict[str, float], list[str]]:
    """Median req/s at 16 conn and p50 at 1 conn per config, and the keys-on / keys-off ratios."""
    median = {
        name: {
            "rps_16": statistics.median(r[16]["rps"] for r in rounds),
            "p50_1_ms": statistics.median(r[1]["p50_ms"] for r in rounds),
            "cpu_us_16": statistics.median(r[16]["cpu_us"] for r in rounds),
        }
        for name, rounds in runs.items()
    }
    ratios = {name: median[name]["rps_16"] / median["off"]["rps_16"] for name in CONFIGS if name != "off"}
    lines = ["", "median over rounds (unique prompts, passthrough):"]
    for name in CONFIGS:
        rps, p50, cpu = median[name]["rps_16"], median[name]["p50_1_ms"], median[name]["cpu_us_16"]
        lines.append(
            f"  {name:6s} {rps:8.1f} req/s at 16 conn, p50 {p50:6.2f} ms at 1 conn, {cpu:5.0f} µs CPU/req"
        )
    for name, ratio in ratios.items():
        verdict = "met" if ratio >= 0.9 else "MISSED"
        lines.append(f"  keys on ({name}) / off, req/s at 16 conn: {ratio:.3f}  goal ≥ 0.9  {verdict}")
        cpu_ratio = median["off"]["cpu_us_16"] / median[name]["cpu_us_16"]
        lines.append(f"  keys off / on ({name}), gateway CPU per request at 16 conn: {cpu_ratio:.3f}")
    return median, ratios, lines


if __name__ == "__main__":
    raise SystemExit(main())
