"""Real servers for the gateway's tests: a controllable mock upstream and gateways under uvicorn.

The routing artifact is a KNN over the hashing embedder, trained on a hand-made table where the cheap
model is right on arithmetic prompts and only the dear model is right on poems.
"""

import time

import numpy as np
import pytest
import yaml
from starlette.applications import Starlette

from routeyard.gateway.app import create_app
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import load_settings
from routeyard.gateway.usage import InMemoryUsageLog
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.training import train_predictor
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread, free_port

UPSTREAM_KEY = "sk-upstream-secret-4242"
MATH = [f"What is {a} plus {b}? Answer with the sum of the numbers." for a in range(20) for b in (3, 7)]
POEMS = [
    f"Write a sonnet about the {w} in the moonlight, with rhymes." for w in ("sea", "cat", "owl", "tree")
] * 10


def routing_table() -> OutcomeTable:
    prompts = MATH + POEMS
    n = len(prompts)
    is_poem = np.array([i >= len(MATH) for i in range(n)])
    quality = np.stack([np.where(is_poem, 0.0, 1.0), np.ones(n)], axis=1)
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.where(is_poem, "poems", "math"),
        prompts=_object_array([(p,) for p in prompts]),
        models=("cheap", "dear"),
        quality=quality,
        missing=np.zeros((n, 2), dtype=bool),
        cost=np.tile([0.0001, 0.01], (n, 1)),
    )


def _object_array(items):
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


@pytest.fixture(scope="session")
def upstream():
    with ServerThread(create_upstream_app()) as server:
        yield server


@pytest.fixture(scope="session")
def artifact(tmp_path_factory):
    directory = tmp_path_factory.mktemp("artifact") / "knn"
    trained = train_predictor(
        routing_table(),
        HashingEmbedder(),
        "knn",
        train_fraction=1.0,
        hyperparameters={"k": 3, "weighting": "uniform", "shrinkage": 0.0},
    )
    save_artifact(trained.predictor, trained.manifest, directory)
    return directory


@pytest.fixture(scope="session")
def mlp_artifact(tmp_path_factory):
    directory = tmp_path_factory.mktemp("artifact") / "mlp"
    trained = train_predictor(routing_table(), HashingEmbedder(), "mlp", train_fraction=1.0)
    save_artifact(trained.predictor, trained.manifest, directory)
    return directory


def gateway_settings(upstream_url, artifact, mlp_artifact=None, **overrides):
    v1 = upstream_url + "/v1"
    closed = f"http://127.0.0.1:{free_port()}/v1"

    def backend(name, model, url=v1, **extra):
        return {"name": name, "base_url": url, "model": model, "api_key_env": "UPSTREAM_KEY", **extra}

    settings = {
        "backends": [
            backend("cheap", "echo", input_usd_per_million=0.5, output_usd_per_million=1.0),
            backend("dear", "echo", input_usd_per_million=10.0, output_usd_per_million=30.0),
            backend("quiet", "no-usage", output_usd_per_million=1.0),
            backend("broken", "fail-500", retries=1),
            backend("down", "echo", url=closed, retries=1),
            backend("hanging", "hang", timeout_seconds=0.5),
            backend("garbage", "garbage"),
            backend("cutter", "cut"),
            backend("flaky", "flaky-1"),
            backend("picky", "bad-request"),
        ],
        "routers": [
            {"name": "router-knn", "kind": "knn", "artifact": str(artifact), "willingness_to_pay": 100.0},
            {
                "name": "router-fallback",
                "kind": "knn",
                "artifact": str(artifact),
                "backends": {"dear": "broken"},
            },
            {"name": "router-fixed", "kind": "fixed", "backend": "cheap"},
        ]
        + (
            [{"name": "router-mlp", "kind": "mlp", "artifact": str(mlp_artifact), "willingness_to_pay": 0.1}]
            if mlp_artifact
            else []
        ),
        "default_router": "router-knn",
        "embedder": "hashing",
        "max_body_bytes": 20_000,
        "breaker_failures": 100,
    }
    settings.update(overrides)
    return settings


def start_gateway(settings_dict, tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings_dict))
    app = create_app(load_settings(path), embedder=HashingEmbedder())
    server = ServerThread(app)
    server.__enter__()
    deadline = time.monotonic() + 60.0
    while not _ready_or_failed(app) and time.monotonic() < deadline:
        time.sleep(0.02)
    return app, server


def _ready_or_failed(app):
    runtime = runtime_of(app)
    return bool(runtime.catalog.routers) or "failed" in runtime.not_ready_reason


def memory_log(app: Starlette) -> InMemoryUsageLog:
    """The usage log of a gateway started without ``redis_url``."""
    log = runtime_of(app).usage_log
    assert isinstance(log, InMemoryUsageLog)
    return log


def redis_log(app: Starlette) -> RedisUsageLog:
    """The usage log of a gateway started with ``redis_url``."""
    log = runtime_of(app).usage_log
    assert isinstance(log, RedisUsageLog)
    return log


@pytest.fixture(scope="module")
def gateway_app_and_server(upstream, artifact, mlp_artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(
        gateway_settings(upstream.url, artifact, mlp_artifact), tmp_path_factory.mktemp("gw"), monkeypatch
    )
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def gateway(gateway_app_and_server):
    return gateway_app_and_server[1]
