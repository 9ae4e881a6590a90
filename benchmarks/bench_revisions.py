"""Did a change slow the gateway? Passthrough req/s and CPU per request of two source trees, alternated.

The base is a git revision (``--base``), checked out into a temporary worktree; the other is this
checkout as it is now. Each round serves one config from each tree in turn (one backend on a local mock
upstream; no keys, no cache, no tracing, no Redis): ``routeyard serve`` with ``PYTHONPATH`` set to that
tree, so one venv runs either tree's code. Each is loaded with wrk (unique short prompts, 1 and 16
connections; ``benchmarks/gateway_cpu.py``). Both trees run in every round, in the order base, this
in odd rounds and this, base in even ones, so a host whose speed drifts favours neither. Two ratios are
reported, each with the goal ``--goal`` (default 0.95: "not below the base by more than 5 %"), as the
median of the rounds' own ratios (each round's two runs are seconds apart, so they share the host's
speed of the moment), with their range:

- req/s at 16 connections, this tree / base;
- the gateway's CPU per request at 16 connections, base / this tree.

On a shared 2-core host single rounds scatter by ±20 %: a few rounds cannot resolve 5 %; ask for many
short ones (``--rounds 12 --seconds 5``).

    python -m benchmarks.bench_revisions --base REV [--rounds 3] [--seconds 10] [--goal 0.95] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from benchmarks.gateway_cpu import measure
from benchmarks.local_servers import mock_upstream_command, running
from benchmarks.machine import describe_machine
from routeyard.testing.server_thread import free_port

REPOSITORY = Path(__file__).resolve().parents[1]
Figures = dict[int, dict[str, float]]


@contextlib.contextmanager
def worktree(revision: str, directory: Path) -> Iterator[Path]:
    """``revision`` checked out (detached) at ``directory`` until the block ends."""
    git = ["git", "-C", str(REPOSITORY)]
    subprocess.run([*git, "worktree", "add", "--detach", str(directory), revision], check=True)
    try:
        yield directory
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(directory)], check=False)


def passthrough_config(directory: Path, upstream: str) -> Path:
    """routeyard.yaml: one backend ``echo`` on the mock upstream, nothing else."""
    settings = {
        "backends": [
            {"name": "echo", "base_url": upstream + "/v1", "model": "echo", "input_usd_per_million": 1.0}
        ],
        "cache_dir": str(directory / "cache"),
    }
    path = directory / "passthrough.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@contextlib.contextmanager
def serving(tree: Path, config: Path, log: Path) -> Iterator[tuple[str, int]]:
    """``routeyard serve --config config`` running ``tree``'s code on a free loopback port until the
    block ends: its URL and pid."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [str(Path(sys.executable).parent / "routeyard"), "serve", "--config", str(config)]
    command += ["--port", url.rsplit(":", 1)[1]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEYARD_")}
    env["PYTHONPATH"] = str(tree)
    with running(command, env, url, "/readyz", log) as process:
        yield url, process.pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--goal", type=float, default=0.95)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    runs: dict[str, list[Figures]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp, worktree(args.base, Path(tmp) / "base") as base:
        directory = Path(tmp)
        trees = {"base": base, "this": REPOSITORY}
        upstream = f"http://127.0.0.1:{free_port()}"
        mock = mock_upstream_command(upstream)
        with running(mock, dict(os.environ), upstream, "/calls", directory / "mock.log"):
            config = passthrough_config(directory, upstream)
            for round_number in range(args.rounds):
                order = list(trees.items()) if round_number % 2 == 0 else list(trees.items())[::-1]
                for name, tree in order:
                    with serving(tree, config, directory / f"{name}.log") as (url, pid):
                        figures = measure(url, pid, upstream, {}, args.seconds)
                    runs[name].append(figures)
                    print(f"round {round_number + 1} {name:4s} {_line(figures)}", flush=True)
    summary, lines = _summary(runs, args.goal)
    print("\n".join(lines))
    if args.json:
        record = {"machine": describe_machine(), "base": args.base, "runs": runs, **summary}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


def _line(figures: Figures) -> str:
    return "  ".join(
        f"{c} conn {f['rps']:7.1f} req/s p50 {f['p50_ms']:5.2f} ms {f['cpu_us']:5.0f} µs CPU/req"
        f" ({f['failed']:.0f} failed)"
        for c, f in figures.items()
    )


def _summary(runs: dict[str, list[Figures]], goal: float) -> tuple[dict[str, object], list[str]]:
    """Medians per tree (req/s and CPU at 16 connections, p50 at 1), both ratios (the median of the rounds'
    own) and every round's; the lines that say them, with their verdicts."""
    median = {
        name: {
            "rps_16": statistics.median(r[16]["rps"] for r in rounds),
            "cpu_us_16": statistics.median(r[16]["cpu_us"] for r in rounds),
            "p50_1_ms": statistics.median(r[1]["p50_ms"] for r in rounds),
        }
        for name, rounds in runs.items()
    }
    paired = zip(runs["base"], runs["this"], strict=True)
    rps_ratios, cpu_ratios = zip(
        *(
            (this[16]["rps"] / base[16]["rps"], base[16]["cpu_us"] / this[16]["cpu_us"])
            for base, this in paired
        ),
        strict=True,
    )
    rps_ratio, cpu_ratio = statistics.median(rps_ratios), statistics.median(cpu_ratios)
    lines = ["", f"median over {len(runs['base'])} rounds (passthrough, unique short prompts):"]
    for name, m in median.items():
        lines.append(
            f"  {name:4s} {m['rps_16']:8.1f} req/s at 16 conn, {m['cpu_us_16']:5.0f} µs CPU/req, "
            f"p50 {m['p50_1_ms']:5.2f} ms at 1 conn"
        )
    lines.append("  the rounds' own ratios, median (range):")
    for label, ratios in (("req/s, this / base", rps_ratios), ("CPU per request, base / this", cpu_ratios)):
        ratio = statistics.median(ratios)
        verdict = "met" if ratio >= goal else "MISSED"
        spread = f"({min(ratios):.3f}–{max(ratios):.3f})"
        lines.append(f"  {label:30s} {ratio:.3f} {spread}  goal ≥ {goal}  {verdict}")
    record = {"median": median, "rps_ratio": rps_ratio, "cpu_ratio": cpu_ratio}
    return {**record, "rps_ratios": list(rps_ratios), "cpu_ratios": list(cpu_ratios)}, lines


if __name__ == "__main__":
    raise SystemExit(main())
