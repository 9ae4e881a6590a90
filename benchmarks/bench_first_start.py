"""Benchmark: seconds from `routeyard serve` (no config) to /readyz 200 on a fresh checkout, first start.

Every run takes a fresh copy of the source (a `git clone` of the repository's HEAD, or with `--source DIR`
a copy of that working tree without .git, .venv and caches) and an empty cache directory
(ROUTEYARD_CACHE_DIR), then starts `routeyard serve` on a free loopback port from that copy and polls
/readyz every 50 ms. No new venv is made: the copy runs on this interpreter (the repository's .venv, the
one `make install` makes), its own sources first on the path, so the timing starts where `make serve`'s
install step ends. Target (issue 18): ≤ 20 s on 2 cores. Reports every run and the median.

    python -m benchmarks.bench_first_start [--runs 3] [--source /work/main] [--timeout 180]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchmarks.machine import describe_machine

REPOSITORY = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*_cache", ".hypothesis", "build", "dist", "*.egg-info", "replay-demo"
)
POLL_SECONDS = 0.05
SERVE = "import sys; from routeyard.cli.main import main; sys.exit(main(['serve', '--port', sys.argv[1]]))"


def fresh_checkout(into: Path, source: Path | None) -> Path:
    """A fresh copy of the code under ``into``: a clone of HEAD, or ``source``'s working tree."""
    checkout = into / "routeyard-checkout"
    if source is None:
        subprocess.run(["git", "clone", "--quiet", str(REPOSITORY), str(checkout)], check=True, timeout=120)
    else:
        shutil.copytree(source, checkout, symlinks=True, ignore=NOT_SOURCE)
    return checkout


def seconds_to_ready(checkout: Path, cache: Path, *, timeout: float) -> tuple[float, str]:
    """Start serve from ``checkout`` with the empty ``cache``; seconds until /readyz answers 200, and what
    serve printed. Raises RuntimeError if it exits or is not ready within ``timeout``."""
    port = _free_port()
    env = {**os.environ, "ROUTEYARD_CACHE_DIR": str(cache), "PYTHONPATH": str(checkout)}
    log = cache.parent / "serve.log"
    with log.open("w") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port)], cwd=checkout, env=env, stdout=output, stderr=output
        )
        try:
            while time.perf_counter() - started < timeout:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited with {process.returncode}:\n{log.read_text()}")
                if _ready(port):
                    return time.perf_counter() - started, log.read_text()
                time.sleep(POLL_SECONDS)
            raise RuntimeError(f"not ready within {timeout} s:\n{log.read_text()}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def loaded_from(checkout: Path) -> str:
    """Where the checkout's interpreter imports routeyard from (to show it is the checkout's code)."""
    code = "import routeyard, os; print(os.path.dirname(routeyard.__file__))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", type=Path, help="copy this working tree instead of cloning HEAD")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for /readyz per run")
    args = parser.parse_args()
    origin = f"working tree {args.source}" if args.source else f"git clone of {REPOSITORY} HEAD"
    print(f"machine: {describe_machine()}")
    print(f"interpreter: {sys.executable} (the existing venv, reused: no new venv is made)")
    print(f"source: a fresh {origin} per run, empty ROUTEYARD_CACHE_DIR per run")
    times = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="routeyard-first-start-") as scratch:
            checkout = fresh_checkout(Path(scratch), args.source)
            if run == 1:
                print(f"routeyard imported from: {loaded_from(checkout)}")
            cache = Path(scratch) / "cache"
            cache.mkdir()
            seconds, output = seconds_to_ready(checkout, cache, timeout=args.timeout)
            built = "built artifacts" if "building the demo" in output else "prebuilt artifacts"
            print(f"run {run}: /readyz 200 after {seconds:.2f} s ({built})")
            times.append(seconds)
    print(f"median of {len(times)}: {statistics.median(times):.2f} s (target ≤ 20 s)")


if __name__ == "__main__":
    main()
