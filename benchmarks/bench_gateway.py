"""Benchmark: gateway throughput and latency on loopback with unique prompts, beside LiteLLM (issue 14).

Every load request carries a prompt never sent before in the run (``benchmarks/load_prompts.py``), so no
embedding cache can answer it, at two prompt lengths: ``short`` (~30 tokens) and ``routerbench`` (the
bundled RouterBench sample's real prompts, whose lengths follow its distribution). The one exception is
the row labelled CACHE HIT, which sends one prompt again and again to show what a cache buys.

Rows, each at 1 and 16 connections for ``--seconds`` after a 2 s warm-up (wrk, one thread:
``benchmarks/wrk_load.py``), in one run and one process tree; every server is its own process:

==================  ===========================================================================
``mock``            the local mock upstream directly (the bare upstream)
``passthrough``     routeyard, ``model`` names a backend (short; ``passthrough-rb``: RouterBench)
``knn``             routeyard KNN routing (short; ``knn-rb``: RouterBench lengths)
``knn-cache-hit``   KNN routing, one repeated prompt: embedding-cache hits, labelled as such
``knn-stream``      KNN routing, streamed (``stream: true``; wrk reads each stream to its end)
``passthrough-w2``  passthrough under ``routeyard serve --workers 2`` (``knn-w2``: KNN routing)
``litellm``         LiteLLM proxy 1.106.2 passing through to the mock (``litellm-rb``: RouterBench)
``ttft``            streamed time to first token, 1 connection, ``--stream-requests`` requests each
                    through a Python httpx client: mock directly, passthrough, KNN routing (short)
==================  ===========================================================================

The KNN artifact is trained as ``routeyard train`` trains (``train_selected``: hyperparameters chosen by
cross-validation inside the train split, Zero guard) on the sample with ``--embedder``, whose default is
the gateway's. The gateway serves with a fresh temporary ``cache_dir``: the model exports (directories)
of the real cache directory are linked in, its embedding-cache files are not, and no ``ROUTEYARD_*``
variable of the caller's environment reaches the gateway. After every wrk run the benchmark waits until
the mock has received every call that run started (``local_servers.drain``): a slow row's requests left
in flight must not eat into the next run. A row with under 10 answers per connection is flagged: its
rate is biased low (in-flight requests at the deadline are not counted). After a single-worker
routeyard row's wrk runs, ``--overhead-requests`` more unique-prompt requests of that row, one after
another through an httpx client, read the gateway's ``x-routeyard-overhead-ms`` header (its own time,
upstream waiting excluded; a stream's up to its first byte): its p50 and p99. Printed: every row, then
the issue's targets, the scaling figures, the streamed TTFT overheads and the overhead headers.

    python -m benchmarks.bench_gateway [--seconds 10] [--skip-litellm] [--only knn,passthrough,...]
                                       [--embedder NAME] [--stream-requests 200]
                                       [--overhead-requests 200] [--json PATH]

Needs ``wrk`` (``apt-get install -y wrk``); installs LiteLLM into its own venv on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from benchmarks import litellm_proxy, overhead_header
from benchmarks.first_token import FirstTokenTimes, first_token_overheads, measure_first_tokens
from benchmarks.load_prompts import (
    ChatBody,
    Profile,
    chat_bodies,
    prompt_pool,
    repeated_body,
)
from benchmarks.local_servers import drain, mock_upstream_command, upstream_calls
from benchmarks.local_servers import running as running  # also for benchmarks/bench_usage_log.py
from benchmarks.machine import describe_machine
from benchmarks.overhead_header import OverheadTimes
from benchmarks.wrk_load import LoadResult, run_load
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.gateway.settings import GatewaySettings
from routeyard.predictor.embedder_choice import EMBEDDERS
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.server_thread import free_port

PASSTHROUGH_MODEL = "gpt-4-1106-preview"
KNN_ROUTER = "router-knn"
CONNECTIONS = (1, 16)
WARM_UP_SECONDS = 2
DEFAULT_EMBEDDER = str(GatewaySettings.model_fields["embedder"].default)
PROMPTS = {"short": "unique, ~30 tokens", "routerbench": "unique, RouterBench lengths", None: "CACHE HIT"}


@dataclass(frozen=True)
class Row:
    """One load target: which server, which ``model``, which prompts (``None``: one repeated prompt),
    whether streamed."""

    key: str
    label: str
    server: str  # "mock", "gateway", "gateway-2" (two workers) or "litellm"
    model: str
    profile: Profile | None
    stream: bool = False


ROWS = (
    Row("mock", "mock upstream directly", "mock", "echo", "short"),
    Row("passthrough", "routeyard passthrough", "gateway", PASSTHROUGH_MODEL, "short"),
    Row("passthrough-rb", "routeyard passthrough", "gateway", PASSTHROUGH_MODEL, "routerbench"),
    Row("knn", "routeyard KNN routing", "gateway", KNN_ROUTER, "short"),
    Row("knn-rb", "routeyard KNN routing", "gateway", KNN_ROUTER, "routerbench"),
    Row("knn-cache-hit", "routeyard KNN routing", "gateway", KNN_ROUTER, None),
    Row("knn-stream", "routeyard KNN routing, streamed", "gateway", KNN_ROUTER, "short", stream=True),
    Row("passthrough-w2", "routeyard passthrough, --workers 2", "gateway-2", PASSTHROUGH_MODEL, "short"),
    Row("knn-w2", "routeyard KNN routing, --workers 2", "gateway-2", KNN_ROUTER, "short"),
    Row("litellm", "LiteLLM 1.106.2 passthrough", "litellm", litellm_proxy.MODEL, "short"),
    Row("litellm-rb", "LiteLLM 1.106.2 passthrough", "litellm", litellm_proxy.MODEL, "routerbench"),
)
ROW_KEYS = (*(row.key for row in ROWS), "ttft")
Results = dict[str, dict[int, LoadResult]]


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, comparing row ``row`` with row ``baseline``: unit ``×`` is the ratio
    of their req/s at 16 connections (higher is better), ``ms`` the difference of their p50 latencies
    at 1 connection (lower is better); ``first_bar`` is the issue's first, easier goal."""

    name: str
    row: str
    baseline: str
    unit: str
    goal: float
    first_bar: float | None = None

    def measured(self, results: Results) -> float | None:
        """The figure, or ``None`` when a row it needs was not measured."""
        if self.row not in results or self.baseline not in results:
            return None
        if self.unit == "ms":
            return results[self.row][1].p50_ms - results[self.baseline][1].p50_ms
        return results[self.row][16].requests_per_second / results[self.baseline][16].requests_per_second

    def verdict(self, measured: float | None) -> str:
        if measured is None:
            return "not measured"
        if self._meets(measured, self.goal):
            return "met"
        if self.first_bar is not None and self._meets(measured, self.first_bar):
            return f"missed (first bar {self.first_bar:g}{self.unit} met)"
        return "missed"

    def _meets(self, measured: float, goal: float) -> bool:
        return measured <= goal if self.unit == "ms" else measured >= goal


TARGETS = (
    Target("KNN routing / LiteLLM, req/s at 16 conn, ~30-token", "knn", "litellm", "×", 10, 5),
    Target("KNN routing / LiteLLM, req/s at 16 conn, RouterBench", "knn-rb", "litellm-rb", "×", 8, 4),
    Target("p50 added by routing over passthrough, 1 conn, ~30-token", "knn", "passthrough", "ms", 2),
    Target("p50 added by routing over passthrough, 1 conn, RouterBench", "knn-rb", "passthrough-rb", "ms", 4),
    Target("passthrough p50 over the bare upstream, 1 conn", "passthrough", "mock", "ms", 1),
    Target("passthrough / LiteLLM, req/s at 16 conn", "passthrough", "litellm", "×", 20),
)
SCALING = (  # figures without a target
    Target("passthrough, 2 workers / 1 worker, req/s at 16 conn", "passthrough-w2", "passthrough", "×", 0),
    Target("KNN routing, 2 workers / 1 worker, req/s at 16 conn", "knn-w2", "knn", "×", 0),
    Target("KNN routing, CACHE HIT / unique ~30-token, req/s at 16 conn", "knn-cache-hit", "knn", "×", 0),
)


def serving_cache_dir(real_cache_dir: Path, directory: Path) -> Path:
    """A fresh cache directory for the gateway: links to ``real_cache_dir``'s subdirectories (model
    exports such as ``onnx/``, so nothing is exported again) and none of its files (the embedding caches)."""
    serving = directory / "serving-cache"
    serving.mkdir()
    if real_cache_dir.is_dir():
        for entry in real_cache_dir.iterdir():
            if entry.is_dir():
                (serving / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    return serving


def gateway_config(directory: Path, upstream: str, embedder_name: str, real_cache_dir: Path) -> Path:
    """routeyard.yaml: the 11 RouterBench models as backends on the mock and a KNN router over them,
    trained with ``embedder_name`` as ``routeyard train`` trains; a fresh ``cache_dir``."""
    from routeyard.evaluation.selected_training import train_selected
    from routeyard.predictor.artifact import save_artifact
    from routeyard.predictor.embedder_choice import make_embedder

    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    started = time.perf_counter()
    trained = train_selected(table, make_embedder(embedder_name, real_cache_dir), "knn").trained
    save_artifact(trained.predictor, trained.manifest, directory / "knn")
    print(
        f"KNN artifact: embedder {embedder_name}, CV-selected {trained.manifest.hyperparameters}, "
        f"trained in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    router = {
        "name": KNN_ROUTER,
        "kind": "knn",
        "artifact": str(directory / "knn"),
        "willingness_to_pay": 0.05,
    }
    settings = {
        "backends": [{"name": m, "base_url": upstream + "/v1", "model": "echo"} for m in table.models],
        "routers": [router],
        "embedder": embedder_name,
        "cache_dir": str(serving_cache_dir(real_cache_dir, directory)),
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def measure(
    label: str,
    url: str,
    model: str,
    seconds: int,
    headers: dict[str, str] | None = None,
    *,
    profile: Profile | None = "short",
    upstream: str | None = None,
    stream: bool = False,
) -> dict[int, LoadResult]:
    """Load results by connection count for one target, each after a warm-up; printed as they come.

    ``profile`` names the unique prompts sent (``benchmarks/load_prompts.py``); ``None`` sends one
    repeated prompt (cache hits); ``stream`` asks for streamed answers. With ``upstream`` (the mock
    behind the target), every run is followed by :func:`drain`, so requests a run left in flight do not
    eat into the next one.
    """
    bodies = _bodies(model, profile, stream)
    endpoint, results = url + "/v1/chat/completions", {}
    for connections in CONNECTIONS:
        for duration in (WARM_UP_SECONDS, seconds):
            calls = 0 if upstream is None else upstream_calls(upstream)
            result = run_load(endpoint, bodies, connections=connections, seconds=duration, headers=headers)
            if upstream is not None:
                slowest = result.p99_ms / 1000.0 if result.requests else duration
                drain(upstream, calls + result.started, quiet_seconds=max(1.0, 1.5 * slowest))
        few = "  FEW ANSWERS: rate biased low, raise --seconds" if result.requests < 10 * connections else ""
        print(
            f"  {label:36s} {PROMPTS[profile]:27s} {connections:2d} conn: "
            f"{result.requests_per_second:8.1f} req/s, p50 {result.p50_ms:8.2f} ms, "
            f"p99 {result.p99_ms:8.2f} ms ({result.requests} requests, {result.errors} failed){few}",
            flush=True,
        )
        results[connections] = result
    return results


def measure_row(
    row: Row, url: str, upstream: str, seconds: int, headers: dict[str, str] | None = None
) -> dict[int, LoadResult]:
    """:func:`measure` for one of :data:`ROWS`, whose server calls the mock at ``upstream``."""
    return measure(
        row.label, url, row.model, seconds, headers, profile=row.profile, upstream=upstream, stream=row.stream
    )


def _bodies(model: str, profile: Profile | None, stream: bool) -> list[ChatBody]:
    bodies = [repeated_body(model)] if profile is None else chat_bodies(model, prompt_pool(profile))
    return [{**body, "stream": True} for body in bodies] if stream else bodies


def overhead_times(url: str, row: Row, requests: int) -> OverheadTimes:
    """``row``'s overhead header over ``requests`` requests at 1 connection (``benchmarks.overhead_header``:
    unique prompts unless the row repeats one); printed."""
    bodies = _bodies(row.model, row.profile, row.stream)
    result = overhead_header.overhead_times(url, bodies, requests, unique=row.profile is not None)
    print(
        f"  overhead header, {row.label:36s} {PROMPTS[row.profile]:27s} 1 conn: p50 {result.p50_ms:6.3f} ms, "
        f"p99 {result.p99_ms:6.3f} ms ({result.requests} requests, {result.missing} without it)",
        flush=True,
    )
    return result


def print_summary(
    results: Results, first_tokens: dict[str, FirstTokenTimes], overheads: dict[str, OverheadTimes]
) -> None:
    """The targets table, the scaling figures, the TTFT overheads and the overhead headers."""
    print("\ntargets (unique prompts):")
    for target in TARGETS:
        measured = target.measured(results)
        shown = "—" if measured is None else f"{measured:.2f} {target.unit}"
        goal = f"{'≤' if target.unit == 'ms' else '≥'} {target.goal:g} {target.unit}"
        print(f"  {target.name:60s} {shown:>10s}  goal {goal:7s}  {target.verdict(measured)}")
    print("\nother figures:")
    for figure in SCALING:
        measured = figure.measured(results)
        print(f"  {figure.name:72s} {'—' if measured is None else f'{measured:.2f} ×':>10s}")
    for name, value in first_token_overheads(first_tokens).items():
        print(f"  {name:72s} {value:10.2f}")
    for key, times in overheads.items():
        shown = f"{times.p50_ms:.3f} / {times.p99_ms:.3f}"
        print(f"  {'x-routeyard-overhead-ms p50 / p99, 1 conn, ' + key:72s} {shown:>16s}")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    selected = [
        key for key in ROW_KEYS if key in args.only and not (args.skip_litellm and key.startswith("litellm"))
    ]
    print(f"machine: {describe_machine()}\nembedder: {args.embedder}; rows: {', '.join(selected)}")
    real_cache_dir = Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()
    with tempfile.TemporaryDirectory() as tmp:
        results, first_tokens, overheads = _run(selected, args, Path(tmp), real_cache_dir)
    print_summary(results, first_tokens, overheads)
    if args.json is not None:
        args.json.write_text(json.dumps(_record(args, results, first_tokens, overheads), indent=2) + "\n")
    return 0


def _run(
    selected: list[str], args: argparse.Namespace, tmp: Path, real_cache_dir: Path
) -> tuple[Results, dict[str, FirstTokenTimes], dict[str, OverheadTimes]]:
    """Start each server the selected rows need, in turn, and measure its rows (a single worker's also
    by their overhead header)."""
    rows = [row for row in ROWS if row.key in selected]
    litellm = litellm_proxy.install_litellm(real_cache_dir) if _on(rows, "litellm") else None
    results: Results = {}
    first_tokens: dict[str, FirstTokenTimes] = {}
    overheads: dict[str, OverheadTimes] = {}
    upstream = _local_url()
    with running(mock_upstream_command(upstream), dict(os.environ), upstream, "/calls", tmp / "mock.log"):
        for row in _on(rows, "mock"):
            results[row.key] = measure_row(row, upstream, upstream, args.seconds)
        if _on(rows, "gateway") or _on(rows, "gateway-2") or "ttft" in selected:
            config = gateway_config(tmp, upstream, args.embedder, real_cache_dir)
            for workers, server in ((1, "gateway"), (2, "gateway-2")):
                ttft = workers == 1 and "ttft" in selected
                if _on(rows, server) or ttft:
                    with serving(config, workers, tmp) as gateway:
                        for row in _on(rows, server):
                            results[row.key] = measure_row(row, gateway, upstream, args.seconds)
                            if workers == 1 and args.overhead_requests > 0:
                                overheads[row.key] = overhead_times(gateway, row, args.overhead_requests)
                        if ttft:
                            first_tokens = _first_tokens(upstream, gateway, args.stream_requests)
        if litellm is not None:
            peer = _local_url()
            config = litellm_proxy.litellm_config(tmp, upstream)
            command, env = litellm_proxy.litellm_command(litellm, config, int(_port(peer)))
            with running(command, env, peer, litellm_proxy.READY_PATH, tmp / "litellm.log"):
                auth = {"Authorization": f"Bearer {litellm_proxy.MASTER_KEY}"}
                for row in _on(rows, "litellm"):
                    results[row.key] = measure_row(row, peer, upstream, args.seconds, auth)
    return results, first_tokens, overheads


@contextlib.contextmanager
def serving(config: Path, workers: int, tmp: Path) -> Iterator[str]:
    """``routeyard serve --config config --workers workers`` on a free port, until the block ends; yields
    its URL once every worker is ready. No ``ROUTEYARD_*`` variable of ours reaches it: the config rules."""
    gateway = _local_url()
    serve = [_bin("routeyard"), "serve", "--config", str(config), "--port", _port(gateway)]
    serve += ["--workers", str(workers)]
    env = {name: value for name, value in os.environ.items() if not name.startswith("ROUTEYARD_")}
    with running(
        serve, env, gateway, "/readyz", tmp / f"gateway-{workers}.log", checks=1 if workers == 1 else 10
    ):
        yield gateway


def _first_tokens(upstream: str, gateway: str, requests: int) -> dict[str, FirstTokenTimes]:
    targets = {
        "mock directly": (upstream, "echo"),
        "routeyard passthrough": (gateway, PASSTHROUGH_MODEL),
        "routeyard KNN routing": (gateway, KNN_ROUTER),
    }
    return measure_first_tokens(targets, requests)


def _on(rows: list[Row], server: str) -> list[Row]:
    return [row for row in rows if row.server == server]


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _local_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def _record(
    args: argparse.Namespace,
    results: Results,
    first_tokens: dict[str, FirstTokenTimes],
    overheads: dict[str, OverheadTimes],
) -> dict[str, object]:
    """Everything measured, for ``--json``."""
    rows = [
        {
            "key": row.key,
            "label": row.label,
            "prompts": PROMPTS[row.profile],
            "stream": row.stream,
            "connections": c,
            **asdict(r),
        }
        for row in ROWS
        if row.key in results
        for c, r in results[row.key].items()
    ]
    figures = [
        {**asdict(t), "measured": t.measured(results), "verdict": t.verdict(t.measured(results))}
        for t in TARGETS
    ]
    return {
        "machine": describe_machine(),
        "embedder": args.embedder,
        "seconds": args.seconds,
        "warm_up_seconds": WARM_UP_SECONDS,
        "rows": rows,
        "first_token": {label: asdict(t) for label, t in first_tokens.items()},
        "first_token_overheads": first_token_overheads(first_tokens),
        "overhead_header": {key: asdict(times) for key, times in overheads.items()},
        "targets": figures,
        "scaling": [
            {"name": t.name, "row": t.row, "baseline": t.baseline, "measured": t.measured(results)}
            for t in SCALING
        ],
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each measured run")
    parser.add_argument("--skip-litellm", action="store_true", help="leave out the LiteLLM rows")
    parser.add_argument(
        "--only", type=_row_keys, default=ROW_KEYS, help=f"comma-separated rows: {','.join(ROW_KEYS)}"
    )
    parser.add_argument(
        "--embedder", choices=EMBEDDERS, default=DEFAULT_EMBEDDER, help="default: the gateway's default"
    )
    parser.add_argument(
        "--stream-requests", type=int, default=200, help="timed streamed requests per TTFT row"
    )
    parser.add_argument(
        "--overhead-requests",
        type=int,
        default=200,
        help="requests per single-worker routeyard row whose overhead header is read (0: none)",
    )
    parser.add_argument("--json", type=Path, help="also write every result to this JSON file")
    return parser.parse_args(argv)


def _row_keys(text: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in text.split(",") if key.strip())
    unknown = [key for key in keys if key not in ROW_KEYS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown rows {', '.join(unknown)}; known: {', '.join(ROW_KEYS)}")
    return keys


if __name__ == "__main__":
    raise SystemExit(main())
