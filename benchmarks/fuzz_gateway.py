"""Benchmark: the gateway under a schema-driven fuzzer, at full count (issue 15, item 6).

Sends ``--requests`` generated requests (default 2,000: schemathesis over the gateway's OpenAPI document,
``/openapi.json`` completed with the chat, feedback and admin key bodies, and more families drawn by
Hypothesis; ``benchmarks/fuzz_generated_probes.py``, ``benchmarks/fuzz_schema.py``) and then the fixed
malformed set (``benchmarks/fuzz_malformed_probes.py``: bad UTF-8, truncated JSON, 5 MB and 10,000-deep
bodies, header abuse, raw-socket framing attacks, bodies that break off, a 16 MiB header) to
``routeyard serve`` in its own process, over a real mock upstream on loopback. The gateway takes client
keys, an admin key and virtual keys; some of its backends fail as documented (HTTP 500, refused, garbage,
a timeout, 429: 502, 503 and 504 are expected of them).

Expected: no 5xx but the documented upstream ones, every error OpenAI-shaped, no secret in an answer or
in the log, no internal error logged, the 16 MiB header and 5 MB bodies refused, and the server alive
afterwards (``/healthz`` answers 200). Printed: the figures (requests sent, status histogram, 5xx,
errors not OpenAI-shaped, …) and up to five reproducers per problem found; ``--json`` writes them too.

    python -m benchmarks.fuzz_gateway [--requests 2000] [--seed N] [--json PATH] [--log PATH]

:func:`fuzz` runs the same against any running gateway; ``tests/gateway/test_fuzz.py`` runs its parts,
bounded. Exit status 0 when the server stayed alive and no problem was found, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from benchmarks.fuzz_checks import PARSER_PLAIN_400, Tally, log_problems
from benchmarks.fuzz_generated_probes import generated_probes
from benchmarks.fuzz_malformed_probes import malformed_probes
from benchmarks.fuzz_probe import FuzzTarget, Probe
from benchmarks.fuzz_schema import completed_openapi, operations_of, schema_probes, sdk_chat_probes
from benchmarks.fuzz_sender import Sender
from benchmarks.local_servers import running
from benchmarks.machine import describe_machine
from benchmarks.synthetic import generate_synthetic_table
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.training import train_predictor
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread, free_port

UPSTREAM_KEY = "sk-fuzz-upstream-7373"
CLIENT_KEY = "sk-fuzz-client-5151"
ADMIN_KEY = "sk-fuzz-admin-6161"
ENV = {"FUZZ_UPSTREAM_KEY": UPSTREAM_KEY, "FUZZ_CLIENT_KEYS": CLIENT_KEY, "FUZZ_ADMIN_KEY": ADMIN_KEY}
KNN = {"k": 3, "weighting": "uniform", "shrinkage": 0.0}
FAILING_BACKENDS: dict[
    str, tuple[str, dict[str, Any]]
] = {  # name: (mock model id, extra backend settings); each fails as documented
    "broken": ("fail-500", {"retries": 1}),
    "garbage": ("garbage", {}),
    "hanging": ("hang", {"timeout_seconds": 0.5}),
    "flaky": ("flaky-3", {}),
    "limited": ("rate-limit", {}),
    "picky": ("bad-request", {}),
}


def fuzz(target: FuzzTarget, document: dict[str, Any], generated: int, seed_value: int) -> Tally:
    """Send ``generated`` generated probes (Hypothesis, seeded; schemathesis over the OpenAPI
    ``document``, see :func:`openapi_document`) and then the fixed malformed set to ``target``; the
    tally of what came back."""
    tally = Tally(target.placeholders())
    with Sender(target) as sender:
        probes = generated_probes(target, sdk_chat_probes(target, document), schema_probes(target, document))
        send_generated(sender, probes, generated, seed_value, tally)
        for probe in malformed_probes(target):
            tally.record(probe, sender.send(probe))
    return tally


def send_generated(
    sender: Sender, probes: st.SearchStrategy[Probe], count: int, seed_value: int, tally: Tally
) -> None:
    """Send ``count`` probes drawn from ``probes`` (generation only: nothing is shrunk or replayed) and
    record their answers in ``tally``."""

    @seed(seed_value)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(probes)
    def send_one(probe: Probe) -> None:
        tally.record(probe, sender.send(probe))

    send_one()


def openapi_document(url: str) -> dict[str, Any]:
    """The OpenAPI document to fuzz the gateway at ``url`` by: its ``/openapi.json``, completed with the
    bodies it does not describe (``benchmarks/fuzz_schema.py``)."""
    response = httpx.get(url + "/openapi.json", timeout=30)
    response.raise_for_status()
    return completed_openapi(response.json())


def is_alive(url: str) -> bool:
    """Whether the gateway at ``url`` answers ``/healthz`` with 200."""
    try:
        return httpx.get(url + "/healthz", timeout=30).status_code == 200
    except httpx.TransportError:
        return False


def gateway_config(directory: Path, upstream: str) -> tuple[Path, FuzzTarget]:
    """routeyard.yaml in ``directory`` over the mock at ``upstream`` (echo backends named after the
    synthetic table's models, a KNN and a fixed router over them, the failing backends, client, admin
    and virtual keys), and the target it makes (its URL's port is free now)."""
    table = generate_synthetic_table(n_prompts=300)
    trained = train_predictor(table, HashingEmbedder(), "knn", train_fraction=1.0, hyperparameters=KNN)
    save_artifact(trained.predictor, trained.manifest, directory / "knn")
    v1 = upstream + "/v1"
    backends: list[dict[str, Any]] = [_backend(name, v1, "echo") for name in table.models]
    backends += [_backend(name, v1, model, **extra) for name, (model, extra) in FAILING_BACKENDS.items()]
    backends.append(_backend("down", f"http://127.0.0.1:{free_port()}/v1", "echo", retries=1))
    routers = [
        {"name": "router-knn", "kind": "knn", "artifact": str(directory / "knn"), "willingness_to_pay": 1.0},
        {"name": "router-fixed", "kind": "fixed", "backend": table.models[0]},
        {"name": "router-broken", "kind": "fixed", "backend": "broken"},
    ]
    settings_dict = {
        "backends": backends,
        "routers": routers,
        "default_router": "router-knn",
        "embedder": "hashing",
        "cache_dir": str(directory / "cache"),
        "client_keys_env": "FUZZ_CLIENT_KEYS",
        "admin_key_env": "FUZZ_ADMIN_KEY",
        "virtual_keys": True,
        "keys_db": str(directory / "keys.sqlite"),
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings_dict))
    target = FuzzTarget(
        url=f"http://127.0.0.1:{free_port()}",
        client_key=CLIENT_KEY,
        admin_key=ADMIN_KEY,
        answering_models=(*table.models[:3], "router-knn", "router-fixed", "auto"),
        failing_models=(*FAILING_BACKENDS, "down", "router-broken"),
        secrets=(UPSTREAM_KEY, CLIENT_KEY, ADMIN_KEY),
    )
    return path, target


def _backend(name: str, url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base_url": url, "model": model, "api_key_env": "FUZZ_UPSTREAM_KEY", **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--requests", type=int, default=2000, help="generated requests (≥ 2,000 for the issue)"
    )
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: a random one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--log", type=Path, help="keep the gateway's log in this file")
    args = parser.parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"machine: {describe_machine()}\nseed: {seed_value}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ServerThread(create_upstream_app(UPSTREAM_KEY)) as upstream:
        config, target = gateway_config(Path(tmp), upstream.url)
        log = args.log or Path(tmp) / "gateway.log"
        record = _fuzz_served(config, target, args.requests, seed_value, log)
    record |= {"seed": seed_value, "machine": describe_machine()}
    _print(record)
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    found = [name for name in _FAILING_FIGURES if record[name]]
    return 0 if record["server alive afterwards"] and not found else 1


_FAILING_FIGURES = (
    "5xx other than documented upstream ones",
    "errors not OpenAI-shaped",
    "HTTP parser's plain 400s",
    "answers echoing a secret",
    "oversized requests accepted",
    "no answer",
    "internal errors logged",
    "secrets in the log",
)


def _fuzz_served(
    config: Path, target: FuzzTarget, generated: int, seed_value: int, log: Path
) -> dict[str, Any]:
    """Serve ``config`` with ``routeyard serve`` (its output into ``log``), fuzz it, and the figures."""
    serve = [str(Path(sys.executable).parent / "routeyard"), "serve", "--config", str(config)]
    serve += ["--port", str(target.host_port[1])]
    env = {**os.environ, **ENV}
    with running(serve, env, target.url, "/readyz", log):
        document = openapi_document(target.url)
        started = time.monotonic()
        tally = fuzz(target, document, generated, seed_value)
        seconds = time.monotonic() - started
        alive = is_alive(target.url)
    figures = tally.figures()
    figures |= log_problems(log.read_text(errors="replace"), target.secrets)
    figures |= {
        "generated requests": generated,
        "server alive afterwards": alive,
        "seconds": round(seconds, 1),
    }
    figures["operations fuzzed"] = operations_of(document)
    return figures


def _print(record: dict[str, Any]) -> None:
    print(
        f"requests sent: {record['requests sent']} in {record['seconds']} s "
        f"({record['generated requests']} generated, then the fixed malformed set)"
    )
    print(f"  by family: {record['by family']}")
    print(f"  status histogram: {record['status histogram']}")
    print(f"  operations fuzzed: {', '.join(record['operations fuzzed'])}")
    for name in ("5xx answers", *_FAILING_FIGURES, "server alive afterwards"):
        print(f"  {name}: {record[name]}")
    for problem, examples in record["examples"].items():
        note = " (uvicorn's own text, before the app)" if problem == PARSER_PLAIN_400 else ""
        print(f"\n{problem}{note}, up to 5 reproducers:")
        for example in examples:
            print("  " + example.replace("\n", "\n    "))


if __name__ == "__main__":
    raise SystemExit(main())
