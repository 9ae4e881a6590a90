"""Benchmark: gateway throughput and latency on loopback, against a fast local mock upstream (issue 4).

Three targets, each at 1 and 16 connections, a bounded number of requests each:
(a) the mock upstream directly, (b) routeyard passthrough (``model`` names a backend), (c) routeyard
with KNN routing (ONNX MiniLM embedding + FAISS over the RouterBench sample's train split) on short
prompts. The mock and the gateway run as their own processes (uvicorn, one worker each); the load comes
from this process with httpx. Reported: requests per second, p50 and p99 latency, and the p50 latency
routing adds over passthrough at 1 connection.

    python -m benchmarks.bench_gateway [--requests 2000]

Not yet here: the same load through LiteLLM proxy for comparison (issue 4 leaves it open).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import yaml

from benchmarks.bench_predict import short_prompts
from benchmarks.machine import describe_machine
from benchmarks.mock_upstream import free_port
from predictor.routerbench_format import load_routerbench_table

SAMPLE = Path(__file__).parent / "data" / "routerbench_0shot_subset.csv.gz"


async def load(
    url: str, model: str, connections: int, requests: int, prompts: list[str]
) -> tuple[float, list[float]]:
    """(requests per second, latencies in s) for ``requests`` calls spread over ``connections`` workers."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def worker(offset: int) -> None:
            for i in range(offset, requests, connections):
                body = {"model": model, "messages": [{"role": "user", "content": prompts[i % len(prompts)]}]}
                start = time.perf_counter()
                response = await client.post(url + "/v1/chat/completions", json=body)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*[worker(c) for c in range(connections)])
        elapsed = time.perf_counter() - start
    return requests / elapsed, latencies


def start(command: list[str], env: dict[str, str], url: str, ready_path: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + ready_path, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command[0]} did not become ready at {url}")


def gateway_config(directory: Path, upstream: str, cache_dir: Path) -> Path:
    from predictor.artifact import save_artifact
    from predictor.embedder_choice import make_embedder
    from predictor.knn import TUNED_PARAMETERS
    from predictor.training import train_predictor

    table = load_routerbench_table(SAMPLE, with_responses=False)
    trained = train_predictor(table, make_embedder("minilm-onnx", cache_dir), "knn", **TUNED_PARAMETERS)
    save_artifact(trained.predictor, trained.manifest, directory / "knn")
    settings = {
        "backends": [{"name": m, "base_url": upstream + "/v1", "model": "echo"} for m in table.models],
        "routers": [
            {
                "name": "router-knn",
                "kind": "knn",
                "artifact": str(directory / "knn"),
                "willingness_to_pay": 0.05,
            }
        ],
        "embedder": "minilm-onnx",
        "cache_dir": str(cache_dir),
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per run at 16 connections")
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    cache_dir = Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()
    bin_dir = Path(sys.executable).parent
    prompts = short_prompts(500)
    with tempfile.TemporaryDirectory() as tmp:
        upstream = f"http://127.0.0.1:{free_port()}"
        gateway = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "ROUTEYARD_CACHE_DIR": str(cache_dir)}
        mock = start(
            [
                str(bin_dir / "uvicorn"),
                "benchmarks.mock_upstream:create_upstream_app",
                "--factory",
                "--port",
                upstream.rsplit(":", 1)[1],
                "--log-level",
                "warning",
            ],
            env,
            upstream,
            "/calls",
        )
        config = gateway_config(Path(tmp), upstream, cache_dir)
        serve = start(
            [
                str(bin_dir / "routeyard"),
                "serve",
                "--config",
                str(config),
                "--port",
                gateway.rsplit(":", 1)[1],
            ],
            env,
            gateway,
            "/readyz",
        )
        try:
            p50s: dict[tuple[str, int], float] = {}
            for label, url, model in (
                ("mock directly", upstream, "echo"),
                ("routeyard passthrough", gateway, "gpt-4-1106-preview"),
                ("routeyard KNN routing", gateway, "router-knn"),
            ):
                for connections in (1, 16):
                    requests = args.requests if connections > 1 else max(args.requests // 4, 100)
                    asyncio.run(load(url, model, connections, 50, prompts))  # warm-up
                    rps, latencies = asyncio.run(load(url, model, connections, requests, prompts))
                    p50, p99 = np.percentile(np.array(latencies) * 1000.0, [50, 99])
                    p50s[(label, connections)] = float(p50)
                    print(
                        f"  {label:24s} {connections:2d} conn: {rps:7.0f} req/s, "
                        f"p50 {p50:6.2f} ms, p99 {p99:6.2f} ms ({requests} requests)"
                    )
            added = p50s[("routeyard KNN routing", 1)] - p50s[("routeyard passthrough", 1)]
            print(f"  p50 added by KNN routing over passthrough at 1 connection: {added:.2f} ms")
        finally:
            for process in (serve, mock):
                process.terminate()
                process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
