"""The soak's processes (``benchmarks/soak_gateway.py``): ``routeyard serve`` (its config, started until
ready, stopped with SIGTERM), the fault-injecting upstream's command (``benchmarks/fault_upstream.py``)
and the KNN artifact the main router serves (:func:`train_knn`). What the soak measures and checks of
them is ``benchmarks/soak_measures.py``; its traffic is ``benchmarks/soak_traffic.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.soak_traffic import FIXED_ROUTER, KNN_ROUTER
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.server_thread import free_port

EMBEDDER = "minilm-static"  # the gateway's default
SHUTDOWN_LIMIT_SECONDS = 60.0
CLEAN_EXITS = (0, -signal.SIGTERM)  # uvicorn re-raises the SIGTERM after its graceful shutdown
BACKEND_PRICES = ((0.5, 1.5), (3.0, 15.0), (10.0, 30.0), (0.2, 0.2))  # $ per million in, out; in turn


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


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)
