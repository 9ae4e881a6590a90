"""Bounded HTTP load from ``wrk`` (Debian package ``wrk``): requests per second and latency percentiles.

wrk is a C load generator: on a 2-core machine it leaves the cores to the servers under test, where a
Python client would take one of them. :func:`run_load` posts chat-completion bodies in turn (one JSON body
per line of a file, read by a small Lua script) for a fixed duration over a fixed number of connections,
and reads the summary the script prints.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """
local bodies, next_body = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  for name, value in string.gmatch(args[2] or "", "([^=;]+)=([^;]*)") do wrk.headers[name] = value end
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ROUTEYARD-RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


class WrkMissingError(RuntimeError):
    """``wrk`` is not installed."""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured: successful rate, latency percentiles in ms, and failed requests."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_load(
    url: str,
    bodies: list[dict[str, object]],
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST ``bodies`` round-robin to ``url`` over ``connections`` for ``seconds`` (one wrk thread).

    ``headers`` are sent with every request; their values must not contain ``;``.

    Raises WrkMissingError when wrk is not on PATH, RuntimeError when wrk fails.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissingError("the load benchmark needs wrk: apt-get install -y wrk")
    header_text = ";".join(f"{name}={value}" for name, value in (headers or {}).items())
    with tempfile.TemporaryDirectory() as tmp:
        script, body_file = Path(tmp) / "post.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(_SCRIPT)
        body_file.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script)]
        command += [url, "--", str(body_file), header_text]
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if output.returncode != 0:
        raise RuntimeError(f"wrk failed ({output.returncode}): {output.stderr[-2000:]}")
    return _parse(output.stdout)


def _parse(stdout: str) -> LoadResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("ROUTEYARD-RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout[-2000:]}")
    requests, duration_us, errors, p50_us, p99_us = (int(v) for v in line.split()[1:])
    return LoadResult(
        requests=requests,
        requests_per_second=(requests - errors) / (duration_us / 1e6),
        p50_ms=p50_us / 1000.0,
        p99_ms=p99_us / 1000.0,
        errors=errors,
    )
