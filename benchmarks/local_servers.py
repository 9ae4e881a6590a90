"""Local servers for the load benchmarks: run one as a process until ready, and wait until one is idle.

:func:`running` starts a server process and waits until it answers; :func:`drain` waits until the mock
upstream has received every call a load run started, so that a server still working on requests whose
client left (wrk stops at its deadline with requests in flight) does not slow the next run down.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def running(
    command: list[str],
    env: dict[str, str],
    url: str,
    ready_path: str,
    log: Path | None = None,
    *,
    checks: int = 1,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (its output into ``log``, or nowhere) until the block ends; enter (with the process)
    once ``url + ready_path`` answered 200 ``checks`` times in a row, each on a new connection (so that
    every worker of a multi-worker server is ready). Raises RuntimeError (with the log's tail) when not
    ready in 5 min."""
    with contextlib.ExitStack() as files:
        output = subprocess.DEVNULL if log is None else files.enter_context(log.open("wb"))
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline, in_a_row = time.monotonic() + 300, 0
        while in_a_row < checks:
            in_a_row = in_a_row + 1 if _answers(url + ready_path) else 0
            if time.monotonic() > deadline or process.poll() is not None:
                tail = "" if log is None else log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{Path(command[0]).name} did not become ready at {url}:\n{tail}")
            time.sleep(0.05 if in_a_row else 0.2)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def upstream_calls(upstream: str) -> int:
    """How many chat completions the mock upstream at ``upstream`` has received."""
    return sum(httpx.get(upstream + "/calls", timeout=5).json().values())


def drain(upstream: str, expected_calls: int, *, quiet_seconds: float, limit_seconds: float = 60.0) -> None:
    """Wait until the mock upstream has received ``expected_calls`` calls, or none for ``quiet_seconds``
    (a request may end unsent, or be dropped), at most ``limit_seconds``: a gateway still working on
    requests whose client left would otherwise slow the next run down."""
    deadline, calls, last_change = time.monotonic() + limit_seconds, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = upstream_calls(upstream)
        if now >= expected_calls:
            return
        if now != calls:
            calls, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet_seconds:
            return
        time.sleep(0.05)


def mock_upstream_command(url: str) -> list[str]:
    """The command serving ``routeyard.testing.mock_upstream`` on ``url``'s port (uvicorn, warnings only)."""
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    app = "routeyard.testing.mock_upstream:create_upstream_app"
    return [uvicorn, app, "--factory", "--port", url.rsplit(":", 1)[1], "--log-level", "warning"]
