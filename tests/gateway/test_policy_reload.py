"""Hot reload gated by replay (issue 17 item 4): ``POST /admin/reload`` over real HTTP, under load.

The gateways here are the conftest's (mock upstream, hashing embedder), started from a config file they
can reload, with ``reload_table`` the conftest's routing table as a long table. The "worse" policy is a
KNN artifact trained on that table with every quality inverted: it believes the cheap model is right on
poems, so router-knn sends poems to ``cheap``; the good one sends them to ``dear``.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from routeyard.gateway.app import create_app
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import load_settings
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.long_format import write_long_table
from routeyard.predictor.training import train_predictor
from routeyard.testing.server_thread import ServerThread, free_port
from tests.gateway.conftest import POEMS, UPSTREAM_KEY, gateway_settings, routing_table

ADMIN_KEY = "admin-reload-key-31337"
CLIENT_KEY = "client-reload-key-2718"
POEM = POEMS[0]
LOAD_THREADS = 4
MAX_REQUESTS_PER_THREAD = 2_000  # the load loop's bound; it stops well before, once the reload answered


@pytest.fixture(scope="module")
def inverted_artifact(tmp_path_factory):
    """A KNN artifact trained on the routing table with every quality inverted (1 − q)."""
    table = routing_table()
    inverted = replace(table, quality=1.0 - table.quality)
    trained = train_predictor(
        inverted,
        HashingEmbedder(),
        "knn",
        train_fraction=1.0,
        hyperparameters={"k": 3, "weighting": "uniform", "shrinkage": 0.0},
    )
    directory = tmp_path_factory.mktemp("artifact") / "knn-inverted"
    save_artifact(trained.predictor, trained.manifest, directory)
    return directory


@pytest.fixture(scope="module")
def reload_table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "outcomes.jsonl"
    write_long_table(routing_table(), path)
    return path


class ReloadableGateway:
    """A gateway started from ``config`` (a file it reloads from), with admin and client keys."""

    def __init__(self, settings, config, monkeypatch):
        monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
        monkeypatch.setenv("RELOAD_ADMIN_KEY", ADMIN_KEY)
        monkeypatch.setenv("RELOAD_CLIENT_KEYS", CLIENT_KEY)
        self.config = config
        self.write(settings)
        self.app = create_app(load_settings(config), embedder=HashingEmbedder(), config_path=config)
        self.server = ServerThread(self.app)
        self.server.__enter__()
        deadline = time.monotonic() + 60.0
        while not runtime_of(self.app).ready and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runtime_of(self.app).ready, runtime_of(self.app).not_ready_reason

    def write(self, settings):
        self.config.write_text(yaml.safe_dump(settings))

    def reload(self, key=ADMIN_KEY):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.post(self.server.url + "/admin/reload", headers=headers, timeout=60.0)

    def client(self):
        return openai.OpenAI(base_url=self.server.url + "/v1", api_key=CLIENT_KEY, max_retries=0)

    def backend_for_poem(self):
        reply = self.client().chat.completions.with_raw_response.create(
            model="router-knn", messages=[{"role": "user", "content": POEM}]
        )
        return reply.headers["x-routeyard-backend"]

    def close(self):
        self.server.__exit__(None, None, None)


def settings_with(upstream, artifact, table, **overrides):
    settings = gateway_settings(
        upstream.url,
        artifact,
        admin_key_env="RELOAD_ADMIN_KEY",
        client_keys_env="RELOAD_CLIENT_KEYS",
        reload_table=str(table),
    )
    settings.update(overrides)
    settings["routers"] = [r for r in settings["routers"] if r["name"] != "router-fallback"]
    return settings


@pytest.fixture
def start(upstream, reload_table, tmp_path, monkeypatch):
    started = []

    def start_with(artifact, **overrides):
        settings = settings_with(upstream, artifact, reload_table, **overrides)
        gateway = ReloadableGateway(settings, tmp_path / "routeyard.yaml", monkeypatch)
        started.append(gateway)
        return gateway, settings

    yield start_with
    for gateway in started:
        gateway.close()


class Load:
    """Official-SDK clients in threads, each in a bounded loop over router-knn until stopped; every
    request's outcome and when it ended are kept."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.stop = threading.Event()
        self.ok: list[float] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        deadline = time.monotonic() + 30.0
        while len(self.ok) < 20 and not self.failures and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)  # requests go on after the swap too
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60.0)

    def _run(self):
        client = self.gateway.client()
        for i in range(MAX_REQUESTS_PER_THREAD):
            if self.stop.is_set():
                return
            prompt = POEMS[i % len(POEMS)] if i % 2 else f"What is {i} plus 3? Answer with the sum."
            try:
                client.chat.completions.create(
                    model="router-knn", messages=[{"role": "user", "content": prompt}]
                )
                self.ok.append(time.monotonic())
            except openai.OpenAIError as exc:
                self.failures.append(repr(exc))

    def served_between(self, start, end):
        return sum(start <= t <= end for t in self.ok)


def router_verdict(body, name):
    return next(r for r in body["routers"] if r["router"] == name)


def test_a_worse_policy_is_rejected_and_the_old_one_keeps_serving(start, artifact, inverted_artifact):
    gateway, settings = start(artifact)
    assert gateway.backend_for_poem() == "dear"
    settings["routers"][0]["artifact"] = str(inverted_artifact)
    gateway.write(settings)

    with Load(gateway) as load:
        began = time.monotonic()
        answer = gateway.reload()
        ended = time.monotonic()

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "routeyard.reload"
    assert body["verdict"] == "rejected" and body["accepted"] is False
    knn = router_verdict(body, "router-knn")
    assert knn["accepted"] is False
    assert knn["candidate_aiq"] < knn["current_aiq"] - body["tolerance"]
    fixed = router_verdict(body, "router-fixed")
    assert fixed["accepted"] is True and fixed["candidate_aiq"] == fixed["current_aiq"]
    assert load.failures == [] and load.served_between(began, ended) > 0
    assert gateway.backend_for_poem() == "dear"  # the old policy still serves


def test_a_better_policy_is_accepted_and_serves_from_then_on(start, artifact, inverted_artifact):
    gateway, settings = start(inverted_artifact)
    assert gateway.backend_for_poem() == "cheap"
    settings["routers"][0]["artifact"] = str(artifact)
    settings["routers"].append({"name": "router-new", "kind": "fixed", "backend": "dear"})
    settings["max_messages"] = 7  # not reloaded: needs a restart
    gateway.write(settings)

    with Load(gateway) as load:
        began = time.monotonic()
        answer = gateway.reload()
        ended = time.monotonic()

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["verdict"] == "accepted" and body["accepted"] is True
    assert body["not_reloaded"] == ["max_messages"]
    knn = router_verdict(body, "router-knn")
    assert knn["accepted"] is True and knn["candidate_aiq"] > knn["current_aiq"]
    new = router_verdict(body, "router-new")
    assert new["current_aiq"] is None and new["candidate_aiq"] is not None and new["accepted"] is True
    assert load.failures == [] and load.served_between(began, ended) > 0
    assert gateway.backend_for_poem() == "dear"  # the new policy serves
    models = {m.id for m in gateway.client().models.list()}
    assert "router-new" in models


def test_a_tolerance_lets_a_slightly_worse_policy_in(start, artifact, inverted_artifact):
    gateway, settings = start(artifact, reload_tolerance=1.0)  # AIQ is in [0, 1]: anything passes
    settings["routers"][0]["artifact"] = str(inverted_artifact)
    gateway.write(settings)

    body = gateway.reload().json()

    assert body["verdict"] == "accepted" and body["tolerance"] == 1.0
    assert gateway.backend_for_poem() == "cheap"


def test_only_the_admin_key_reloads(start, artifact):
    gateway, _ = start(artifact)

    for key in (None, CLIENT_KEY, "wrong"):
        answer = gateway.reload(key)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] in {"admin_key_required", "invalid_api_key"}


def test_admin_endpoints_are_closed_without_an_admin_key(
    upstream, reload_table, artifact, tmp_path, monkeypatch
):
    settings = settings_with(upstream, artifact, reload_table)
    del settings["admin_key_env"]
    gateway = ReloadableGateway(settings, tmp_path / "routeyard.yaml", monkeypatch)
    try:
        answer = gateway.reload()
    finally:
        gateway.close()

    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "admin_key_not_configured"


def test_a_second_reload_while_one_runs_gets_409(start, artifact):
    gateway, _ = start(artifact)
    barrier = threading.Barrier(6)
    statuses = []

    def reload():
        barrier.wait(timeout=30.0)
        statuses.append(gateway.reload())

    threads = [threading.Thread(target=reload) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120.0)

    codes = sorted(answer.status_code for answer in statuses)
    assert len(codes) == 6 and set(codes) <= {200, 409} and codes[0] == 200 and codes[-1] == 409
    refused = next(a for a in statuses if a.status_code == 409).json()["error"]
    assert refused["code"] == "reload_in_progress" and refused["type"] == "invalid_request_error"


def test_a_config_that_does_not_load_is_refused_and_changes_nothing(start, artifact, tmp_path):
    gateway, settings = start(artifact)
    settings["routers"][0]["artifact"] = str(tmp_path / "no-such-artifact")
    gateway.write(settings)

    answer = gateway.reload()

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_config"
    assert gateway.backend_for_poem() == "dear"


def test_without_a_reload_table_the_gateway_refuses_to_reload_ungated(start, artifact):
    gateway, _ = start(artifact, reload_table=None)

    answer = gateway.reload()

    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "reload_not_configured"


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_a_served_gateway_and_logs_the_verdict(
    upstream, reload_table, artifact, inverted_artifact, tmp_path, workers
):
    settings = settings_with(upstream, inverted_artifact, reload_table)
    config, log, port = tmp_path / "routeyard.yaml", tmp_path / "serve.log", free_port()
    config.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "UPSTREAM_KEY": UPSTREAM_KEY, "RELOAD_ADMIN_KEY": ADMIN_KEY}
    env["RELOAD_CLIENT_KEYS"] = CLIENT_KEY
    routeyard = Path(sys.executable).parent / "routeyard"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(routeyard),
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    client = openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)

    def poem_backend():
        reply = client.chat.completions.with_raw_response.create(
            model="router-knn", messages=[{"role": "user", "content": POEM}]
        )
        return reply.headers["x-routeyard-backend"]

    try:
        wait_for(lambda: _ready(url) and log.read_text().count("routers loaded") == workers, process, log)
        assert poem_backend() == "cheap"
        settings["routers"][0]["artifact"] = str(artifact)
        config.write_text(yaml.safe_dump(settings))

        process.send_signal(signal.SIGHUP)

        # with --workers, the supervisor passes SIGHUP on to every worker, and each reloads
        wait_for(lambda: log.read_text().count("reload accepted") == workers, process, log)
        assert {poem_backend() for _ in range(10)} == {"dear"} and process.poll() is None
        assert POEM not in log.read_text()  # the verdict names routers and AIQs, never a prompt
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url):
    try:
        return httpx.get(url + "/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition, process, log, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
