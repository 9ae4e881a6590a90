"""A new predictor kind is one module: registered in a fixture, it is trained by ``routeyard train``,
served by ``routeyard serve``'s app and replayed by ``routeyard replay``, with no other file changed."""

import json
import time

import httpx
import pytest
import yaml
from openai import OpenAI

from routeyard.cli import serve_command
from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.gateway.settings import ConfigError, load_settings
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.server_thread import ServerThread
from tests.cli.toy_predictor import TOY_KIND

FAST = ["--embedder", "hashing", "--no-cache"]  # a fast embedder: the test is about the kind, not the vectors


@pytest.fixture(scope="module")
def toy_kind():
    PREDICTOR_KINDS.register(TOY_KIND)
    yield TOY_KIND
    PREDICTOR_KINDS.unregister(TOY_KIND.name)


@pytest.fixture(scope="module")
def toy_artifact(toy_kind, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "artifact"
    code = main(
        [
            "train",
            "--data",
            str(SAMPLE_TABLE),
            "--predictor",
            "toy",
            "--optimism",
            "0.25",
            *FAST,
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_routeyard_train_writes_an_artifact_of_the_new_kind_with_its_hyperparameters(toy_artifact):
    manifest = json.loads((toy_artifact / "manifest.json").read_text())
    assert manifest["kind"] == "toy"
    assert manifest["hyperparameters"] == {"optimism": 0.25}
    assert manifest["embedder_identity"].startswith("hashing")


def test_a_hyperparameter_of_another_kind_is_refused(toy_kind, tmp_path, capsys):
    code = main(
        [
            "train",
            "--data",
            str(SAMPLE_TABLE),
            "--predictor",
            "toy",
            "--k",
            "5",
            *FAST,
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "--k is a hyperparameter of knn, not of toy" in capsys.readouterr().err


def test_routeyard_serve_routes_with_the_new_kind(toy_artifact, tmp_path, monkeypatch):
    models = load_routerbench_table(SAMPLE_TABLE).models
    config = _write_config(
        tmp_path, models, {"name": "router-toy", "kind": "toy", "artifact": str(toy_artifact)}
    )
    monkeypatch.setenv(serve_command.CONFIG_VARIABLE, str(config))
    with ServerThread(serve_command.app_from_environment()) as server:
        wait_until_ready(server.url)
        client = OpenAI(base_url=server.url + "/v1", api_key="unused")
        reply = client.chat.completions.with_raw_response.create(
            model="router-toy", messages=[{"role": "user", "content": "Which is heavier, a kilo of iron?"}]
        )
    extra = reply.parse().model_extra
    assert extra is not None
    routing = extra["routing"]
    assert reply.headers["x-routeyard-router"] == "router-toy"
    candidates = {c["backend"]: c["predicted_quality"] for c in routing["candidates"]}
    assert set(candidates) == set(models)
    assert min(candidates.values()) >= 0.25  # the toy's optimism: every mean quality raised by 0.25
    # w = ∞: the best predicted quality (capped at 1, so ties go to the cheaper backend)
    assert candidates[reply.headers["x-routeyard-backend"]] == max(candidates.values())


def test_a_router_whose_kind_differs_from_its_artifact_fails_at_start(toy_artifact, tmp_path):
    router = {"name": "router-knn", "kind": "knn", "artifact": str(toy_artifact)}
    config = _write_config(tmp_path, ("gpt-4-1106-preview",), router)
    with pytest.raises(ConfigError, match="holds a 'toy' predictor"):
        load_settings(config)


def test_routeyard_replay_scores_the_new_kind_from_an_artifact_and_trained_on_the_fly(toy_artifact, tmp_path):
    out = tmp_path / "replay"
    code = main(
        [
            *("replay", "--data", str(SAMPLE_TABLE), "--routers", "zero", "--predictor", str(toy_artifact)),
            *("--train", "toy", "--optimism", "0.1", *FAST, "--out", str(out)),
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    routers = {r["router"]: r["aiq"] for r in report["pooled"]["routers"]}
    assert {"wtp-toy", "wtp-toy-trained"} <= set(routers)
    assert all(0.0 < routers[name] <= 1.0 for name in ("wtp-toy", "wtp-toy-trained"))


def wait_until_ready(url, seconds=60.0):
    deadline = time.monotonic() + seconds
    while httpx.get(url + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not load its router"
        time.sleep(0.05)


def _write_config(directory, models, router):
    """A routeyard.yaml in ``directory``: replay backends for ``models`` and the one ``router``."""
    config = directory / "routeyard.yaml"
    backends = [{"name": m, "kind": "replay", "replay_table": str(SAMPLE_TABLE)} for m in models]
    settings = {"backends": backends, "routers": [router], "embedder": "hashing", "cache_dir": str(directory)}
    config.write_text(yaml.safe_dump(settings))
    return config
