"""Benchmark: gateway throughput and latency on loopback, routeyard beside LiteLLM proxy (issue 4).

Four targets, each at 1 and 16 connections for a fixed duration, all in one run on one machine:
(a) a fast local mock upstream directly, (b) routeyard passthrough (``model`` names a backend), (c)
routeyard with KNN routing (ONNX MiniLM embedding + FAISS over the RouterBench sample's train split) on
short prompts, (d) LiteLLM proxy 1.106.2 forwarding to the same mock. Every server runs as its own
process (one uvicorn worker each); the load comes from ``wrk`` (benchmarks/wrk_load.py), which leaves
the two cores to the servers. Reported: successful requests per second, p50 and p99 latency, the
ratios the issue sets targets for, and the p50 latency KNN routing adds over passthrough at 1
connection.

    python -m benchmarks.bench_gateway [--seconds 10] [--skip-litellm]

Needs ``wrk`` (``apt-get install -y wrk``); installs LiteLLM into its own venv on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from benchmarks import litellm_proxy
from benchmarks.bench_predict import short_prompts
from benchmarks.machine import describe_machine
from benchmarks.wrk_load import LoadResult, run_load
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.mock_upstream import free_port

PASSTHROUGH_MODEL = "gpt-4-1106-preview"
CONNECTIONS = (1, 16)


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], url: str, ready_path: str) -> Iterator[None]:
    """Run ``command`` until the block ends; enter once ``url + ready_path`` answers 200 (≤ 5 min)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not _answers(url + ready_path):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{Path(command[0]).name} did not become ready at {url}")
            time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def gateway_config(directory: Path, upstream: str, cache_dir: Path) -> Path:
    """routeyard.yaml: the 11 RouterBench models as backends on the mock, and a KNN router over them."""
    from routeyard.predictor.artifact import save_artifact
    from routeyard.predictor.embedder_choice import make_embedder
    from routeyard.predictor.training import train_predictor

    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    trained = train_predictor(table, make_embedder("minilm-onnx", cache_dir), "knn")  # the tuned defaults
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


def measure(
    label: str, url: str, model: str, seconds: int, headers: dict[str, str] | None = None
) -> dict[int, LoadResult]:
    """Load results by connection count for one target, after a short warm-up; printed as they come."""
    bodies: list[dict[str, object]] = [
        {"model": model, "messages": [{"role": "user", "content": p}]} for p in short_prompts(500)
    ]
    results = {}
    for connections in CONNECTIONS:
        endpoint = url + "/v1/chat/completions"
        run_load(endpoint, bodies, connections=connections, seconds=2, headers=headers)  # warm-up
        result = run_load(endpoint, bodies, connections=connections, seconds=seconds, headers=headers)
        print(
            f"  {label:24s} {connections:2d} conn: {result.requests_per_second:7.0f} req/s, "
            f"p50 {result.p50_ms:7.2f} ms, p99 {result.p99_ms:7.2f} ms "
            f"({result.requests} requests, {result.errors} failed)",
            flush=True,
        )
        results[connections] = result
    return results


def print_targets(results: dict[str, dict[int, LoadResult]]) -> None:
    """The issue's three targets, met or not."""
    passthrough, knn = results["routeyard passthrough"], results["routeyard KNN routing"]
    added = knn[1].p50_ms - passthrough[1].p50_ms
    print(f"  p50 added by KNN routing over passthrough at 1 connection: {added:.2f} ms (target ≤ 10 ms)")
    litellm = results.get("LiteLLM proxy")
    if litellm is None:
        return
    for label, target in (("routeyard passthrough", 10.0), ("routeyard KNN routing", 3.0)):
        ratio = results[label][16].requests_per_second / litellm[16].requests_per_second
        print(f"  {label} / LiteLLM at 16 connections: {ratio:.1f}× (target ≥ {target:.0f}×)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured run")
    parser.add_argument("--skip-litellm", action="store_true", help="leave out the LiteLLM comparison")
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    cache_dir = Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()
    litellm = None if args.skip_litellm else litellm_proxy.install_litellm(cache_dir)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "ROUTEYARD_CACHE_DIR": str(cache_dir)}
    upstream, gateway, peer = (f"http://127.0.0.1:{free_port()}" for _ in range(3))
    results: dict[str, dict[int, LoadResult]] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as servers:
        mock = [str(bin_dir / "uvicorn"), "routeyard.testing.mock_upstream:create_upstream_app", "--factory"]
        mock += ["--port", _port(upstream), "--log-level", "warning"]
        servers.enter_context(running(mock, env, upstream, "/calls"))
        results["mock directly"] = measure("mock directly", upstream, "echo", args.seconds)
        config = gateway_config(Path(tmp), upstream, cache_dir)
        serve = [str(bin_dir / "routeyard"), "serve", "--config", str(config), "--port", _port(gateway)]
        with running(serve, env, gateway, "/readyz"):
            for label, model in (
                ("routeyard passthrough", PASSTHROUGH_MODEL),
                ("routeyard KNN routing", "router-knn"),
            ):
                results[label] = measure(label, gateway, model, args.seconds)
        if litellm is not None:
            command, litellm_env = litellm_proxy.litellm_command(
                litellm, litellm_proxy.litellm_config(Path(tmp), upstream), int(_port(peer))
            )
            with running(command, litellm_env, peer, litellm_proxy.READY_PATH):
                auth = {"Authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}
                results["LiteLLM proxy"] = measure(
                    "LiteLLM proxy", peer, litellm_proxy.MODEL, args.seconds, auth
                )
    print_targets(results)
    return 0


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


if __name__ == "__main__":
    raise SystemExit(main())
