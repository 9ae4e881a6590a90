"""Bounded HTTP load from ``wrk`` (Debian package ``wrk``): requests per second and latency percentiles.

wrk is a C load generator: on a 2-core machine it leaves the cores to the servers under test, where a
Python client would take one of them. :func:`run_load` posts chat-completion bodies in turn (one JSON body
per line of a file, read by a small Lua script) for a fixed duration over a fixed number of connections,
and reads the summary the script prints. A body holding ``benchmarks.load_prompts.PLACEHOLDER`` is sent
with it replaced by a tag no request of the process carried before (``<run>.<thread>.<n>``, see
``benchmarks/load_prompts.py``): the script splits each body around the placeholder once, at start, and
joins the two halves around a fresh tag per request, so a small pool of bodies yields unique requests at
any rate and for any duration. A body without a placeholder is sent as it is, every time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load_prompts import PLACEHOLDER, new_run_id

_SCRIPT = """
local heads, tails, next_body, run, threads = {}, {}, 0, "0", {}
issued = 0  -- requests this thread started (a global, for thread:get in done)
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end
function init(args)
  local placeholder = args[4]
  for line in io.lines(args[1]) do
    local at = string.find(line, placeholder, 1, true)
    heads[#heads + 1] = at and line:sub(1, at - 1) or line
    tails[#tails + 1] = at and line:sub(at + #placeholder) or false
  end
  for name, value in string.gmatch(args[2] or "", "([^=;]+)=([^;]*)") do wrk.headers[name] = value end
  run = args[3]
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function request()
  next_body = next_body % #heads + 1
  issued = issued + 1
  local tail = tails[next_body]
  if not tail then return wrk.format(nil, nil, nil, heads[next_body]) end
  return wrk.format(nil, nil, nil, heads[next_body] .. run .. "." .. thread_id .. "." .. issued .. tail)
end
function done(summary, latency, requests)
  local e, started = summary.errors, 0
  for _, thread in ipairs(threads) do started = started + thread:get("issued") end
  io.write(string.format("ROUTEYARD-RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99),
    started))
end
"""


class WrkMissingError(RuntimeError):
    """``wrk`` is not installed."""


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured: successful rate, latency percentiles in ms, and failed requests.

    ``requests`` counts the answered ones; ``started`` also those still in flight when the run ended, which
    the server may still be working on.
    """

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    started: int


def run_load(
    url: str,
    bodies: list[dict[str, object]],
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST ``bodies`` round-robin to ``url`` over ``connections`` for ``seconds`` (one wrk thread).

    Each body's placeholder, if it has one, is filled with a tag of a new run id (module docstring).
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
        command += [url, "--", str(body_file), header_text, str(new_run_id()), PLACEHOLDER]
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if output.returncode != 0:
        raise RuntimeError(f"wrk failed ({output.returncode}): {output.stderr[-2000:]}")
    return _parse(output.stdout)


def _parse(stdout: str) -> LoadResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("ROUTEYARD-RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout[-2000:]}")
    requests, duration_us, errors, p50_us, p99_us, started = (int(v) for v in line.split()[1:])
    return LoadResult(
        requests=requests,
        requests_per_second=(requests - errors) / (duration_us / 1e6),
        p50_ms=p50_us / 1000.0,
        p99_ms=p99_us / 1000.0,
        errors=errors,
        started=started,
    )
