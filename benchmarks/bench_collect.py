"""``routeyard collect``'s overhead over the upstream calls it makes (issue 16): ≤ 10 % of a bare loop.

Writes ``--prompts`` unique prompts (jsonl, each with a ``reference`` answer, so ``--grader reference``
runs) and a routeyard.yaml of 3 openai backends on one mock upstream (model ``echo``, with prices; the
mock runs as its own uvicorn process, so it shares neither this process's CPU time nor its event loop).
Then, ``--rounds`` times, alternating:

1. ``routeyard collect --concurrency C`` in this process (``routeyard.cli.main.main``), writing a fresh
   out file: the whole command (config, prompts file, calls, grading, out file) is timed, but not the
   interpreter's start and imports, which a bare loop written in Python pays as well; its stdout and
   stderr are captured (so no progress line is drawn, whether or not a terminal is attached);
2. a bare loop of the same calls: one ``httpx.AsyncClient`` per backend, C workers per backend (3·C
   calls in flight), each POST the body collect sends (``messages``, ``model``, ``stream: false``), each
   answer checked for 2xx and parsed as JSON.

Both are first run once, untimed, on a few prompts (imports, first connections). The report gives the
median wall time of each, the overhead ``(collect − bare) / bare`` and its verdict against ≤ 10 %.

    .venv/bin/python -m benchmarks.bench_collect [--prompts 1000] [--concurrency 8] [--rounds 3] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import yaml
from httpx_aiohttp import AiohttpTransport

from benchmarks.load_prompts import PLACEHOLDER, request_tag, short_prompts
from benchmarks.local_servers import mock_upstream_command, running, upstream_calls
from benchmarks.machine import describe_machine
from routeyard.cli.main import main as routeyard_main
from routeyard.testing.server_thread import free_port

BACKENDS = ("alpha", "beta", "gamma")
MODEL = "echo"
GOAL = 0.10
"""The issue's bound on collect's overhead over the bare loop, as a fraction of the bare loop's time."""
WARM_UP_PROMPTS = 30
USD_PER_MILLION = {"input_usd_per_million": 0.5, "output_usd_per_million": 1.5}


@dataclass(frozen=True)
class Figures:
    """What a benchmark run measured: every round's wall seconds and the medians' comparison."""

    collect_seconds: list[float]
    bare_seconds: list[float]

    @property
    def collect_median(self) -> float:
        """The median wall time of ``routeyard collect``, seconds."""
        return statistics.median(self.collect_seconds)

    @property
    def bare_median(self) -> float:
        """The median wall time of the bare loop, seconds."""
        return statistics.median(self.bare_seconds)

    @property
    def overhead(self) -> float:
        """``(collect − bare) / bare`` of the medians (0.05 is 5 %)."""
        return (self.collect_median - self.bare_median) / self.bare_median

    def verdict(self) -> str:
        """``met`` when the overhead is at most :data:`GOAL`, else ``missed``."""
        return "met" if self.overhead <= GOAL else "missed"


def prompt_texts(count: int) -> list[str]:
    """``count`` prompts never equal to one another: the ``short`` pool in turn, each with its own tag."""
    pool = [turns[0] for turns in short_prompts()]
    return [pool[n % len(pool)].replace(PLACEHOLDER, request_tag(0, 0, n + 1), 1) for n in range(count)]


def write_prompts(path: Path, texts: list[str]) -> Path:
    """A jsonl prompts file at ``path``: one row per text, with a ``sample_id`` and a ``reference``."""
    rows = [{"sample_id": f"p{n}", "prompt": text, "reference": "B"} for n, text in enumerate(texts)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_config(path: Path, upstream: str) -> Path:
    """A routeyard.yaml at ``path``: the :data:`BACKENDS` as openai backends of model ``echo`` on the mock
    at ``upstream``, priced, without retries (a failed call must show, not be hidden by a retry)."""
    backends = [
        {"name": name, "base_url": upstream + "/v1", "model": MODEL, "retries": 0, **USD_PER_MILLION}
        for name in BACKENDS
    ]
    path.write_text(yaml.safe_dump({"backends": backends}))
    return path


def time_collect(config: Path, prompts: Path, out: Path, concurrency: int) -> float:
    """Wall seconds of ``routeyard collect`` in this process, writing to the new file ``out``; raises
    RuntimeError unless it exits 0 with every pair answered and none failed."""
    argv = ["collect", "--config", str(config), "--prompts", str(prompts), "--out", str(out)]
    argv += ["--concurrency", str(concurrency)]
    printed, errors = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(errors):
        started = time.perf_counter()
        code = routeyard_main(argv)
        seconds = time.perf_counter() - started
    summary = printed.getvalue().strip()
    if code != 0 or not summary.startswith("done:") or " 0 calls failed" not in summary:
        raise RuntimeError(f"collect did not answer every pair (exit {code}): {summary} {errors.getvalue()}")
    return seconds


def chat_body(text: str) -> dict[str, object]:
    """The body collect's openai backend posts for a one-turn prompt ``text``."""
    return {"messages": [{"role": "user", "content": text}], "model": MODEL, "stream": False}


async def bare_loop(upstream: str, texts: list[str], concurrency: int, transport: str) -> None:
    """Every text posted once per backend: one client per backend, ``concurrency`` workers each; raises
    ``httpx.HTTPStatusError`` on an answer that is not 2xx."""
    url = upstream + "/v1/chat/completions"
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(new_client(transport, concurrency)) for _ in BACKENDS]
        workers = []
        for client in clients:
            queue = list(reversed(texts))
            workers += [_post_all(client, url, queue) for _ in range(concurrency)]
        await asyncio.gather(*workers)


def new_client(transport: str, concurrency: int) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on httpx's own transport (``httpcore``) or collect's (``aiohttp``)."""
    limits = httpx.Limits(max_connections=max(100, concurrency))
    if transport == "aiohttp":
        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=300)
    return httpx.AsyncClient(limits=limits, timeout=300)


async def _post_all(client: httpx.AsyncClient, url: str, queue: list[str]) -> None:
    """POST the queue's texts one after the other until the (shared) queue is empty."""
    while queue:
        response = await client.post(url, json=chat_body(queue.pop()))
        response.raise_for_status()
        response.json()


def time_bare(upstream: str, texts: list[str], concurrency: int, transport: str) -> float:
    """Wall seconds of :func:`bare_loop`, its own event loop included as collect's is."""
    started = time.perf_counter()
    asyncio.run(bare_loop(upstream, texts, concurrency, transport))
    return time.perf_counter() - started


def measure(args: argparse.Namespace, tmp: Path, upstream: str) -> Figures:
    """Warm both up, then alternate collect and the bare loop ``args.rounds`` times, each printed."""
    texts = prompt_texts(args.prompts)
    config = write_config(tmp / "routeyard.yaml", upstream)
    prompts = write_prompts(tmp / "prompts.jsonl", texts)
    warm = write_prompts(tmp / "warm-up.jsonl", prompt_texts(WARM_UP_PROMPTS))
    time_collect(config, warm, tmp / "warm-up.jsonl.out.jsonl", args.concurrency)
    time_bare(upstream, texts[:WARM_UP_PROMPTS], args.concurrency, args.bare_transport)
    figures = Figures([], [])
    for round_number in range(1, args.rounds + 1):
        calls = upstream_calls(upstream)
        out = tmp / f"collect-round-{round_number}.jsonl"
        figures.collect_seconds.append(time_collect(config, prompts, out, args.concurrency))
        figures.bare_seconds.append(time_bare(upstream, texts, args.concurrency, args.bare_transport))
        _check_calls(upstream, calls + 2 * len(texts) * len(BACKENDS))
        print(
            f"  round {round_number}: collect {figures.collect_seconds[-1]:7.3f} s, "
            f"bare loop {figures.bare_seconds[-1]:7.3f} s",
            flush=True,
        )
    return figures


def _check_calls(upstream: str, expected: int) -> None:
    """Raise RuntimeError unless the mock received exactly ``expected`` calls so far."""
    received = upstream_calls(upstream)
    if received != expected:
        raise RuntimeError(f"the mock upstream received {received} calls, not {expected}")


def report(args: argparse.Namespace, figures: Figures, command: str) -> dict[str, object]:
    """Print the medians, the overhead and its verdict; return everything for ``--json``."""
    print(
        f"\nmedians over {args.rounds} rounds: collect {figures.collect_median:.3f} s, "
        f"bare loop {figures.bare_median:.3f} s\n"
        f"overhead (collect − bare) / bare: {figures.overhead:+.1%}   goal ≤ {GOAL:.0%}   "
        f"{figures.verdict()}"
    )
    return {
        "command": command,
        "machine": describe_machine(),
        "prompts": args.prompts,
        "backends": len(BACKENDS),
        "calls_per_run": args.prompts * len(BACKENDS),
        "concurrency_per_backend": args.concurrency,
        "rounds": args.rounds,
        "bare_transport": args.bare_transport,
        "collect_run": "in-process, routeyard.cli.main.main",
        **asdict(figures),
        "collect_median_seconds": figures.collect_median,
        "bare_median_seconds": figures.bare_median,
        "overhead": figures.overhead,
        "goal": GOAL,
        "verdict": figures.verdict(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring); returns the exit code."""
    args = _arguments(argv)
    command = " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_collect", *(argv or sys.argv[1:])])
    print(
        f"command: {command}\nmachine: {describe_machine()}\n"
        f"{args.prompts} prompts × {len(BACKENDS)} mock backends, concurrency {args.concurrency} per "
        f"backend, {args.rounds} rounds; collect in-process; bare loop: httpx.AsyncClient "
        f"({args.bare_transport} transport)",
        flush=True,
    )
    upstream = f"http://127.0.0.1:{free_port()}"
    mock = mock_upstream_command(upstream)
    with tempfile.TemporaryDirectory() as tmp, running(mock, dict(os.environ), upstream, "/calls"):
        figures = measure(args, Path(tmp), upstream)
    record = report(args, figures, command)
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000, help="unique prompts (each to 3 backends)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight per backend")
    parser.add_argument("--rounds", type=int, default=3, help="collect and bare loop, alternated")
    parser.add_argument(
        "--bare-transport",
        choices=("httpcore", "aiohttp"),
        default="httpcore",
        help="the bare loop's httpx transport: httpx's own, or the aiohttp one collect uses",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.concurrency < 1 or args.rounds < 1:
        parser.error("--prompts, --concurrency and --rounds must be at least 1")
    return args


if __name__ == "__main__":
    raise SystemExit(main())
