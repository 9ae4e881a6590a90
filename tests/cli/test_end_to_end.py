"""The README's end-to-end example: collect → train → replay --config → serve, offline.

The operator's two upstreams are a local OpenAI-compatible server answering with two RouterBench models'
recorded responses (replay backends); the prompts and their references come from the bundled sample
(``routeyard.demo.sample_prompts``). Every step is the command a user runs, and the served router is
checked to predict with the artifact ``train`` just wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import yaml

from routeyard.cli.main import main
from routeyard.demo.config import DEMO_EMBEDDER, SAMPLE_TABLE
from routeyard.demo.sample_prompts import main as write_sample_prompts
from routeyard.gateway.app import create_app
from routeyard.gateway.settings import load_settings
from routeyard.predictor.artifact import load_artifact
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.server_thread import ServerThread

BIG, SMALL = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    """A local OpenAI-compatible server whose models answer with the sample's recorded responses."""
    backends = [{"name": m, "kind": "replay", "replay_table": str(SAMPLE_TABLE)} for m in (BIG, SMALL)]
    config = tmp_path / "upstream.yaml"
    config.write_text(yaml.safe_dump({"backends": backends, "cache_dir": str(tmp_path / "cache")}))
    with ServerThread(create_app(load_settings(config))) as server:
        yield server.url + "/v1"


def test_collect_train_replay_the_config_and_serve_the_new_artifact(
    upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert write_sample_prompts(["--count", "60", "--out", "prompts.jsonl"]) == 0
    backends = [
        {
            "name": "big",
            "base_url": upstream,
            "model": BIG,
            "input_usd_per_million": 10,
            "output_usd_per_million": 30,
        },
        {"name": "small", "base_url": upstream, "model": SMALL, "input_usd_per_million": 0.6},
    ]
    Path("my.yaml").write_text(yaml.safe_dump({"backends": backends}))

    assert main(["collect", "--config", "my.yaml", "--prompts", "prompts.jsonl", "--out", "table.csv"]) == 0
    table = load_long_table("table.csv")
    assert table.models == ("big", "small") and table.n_prompts == 60 and not table.missing.any()
    assert table.quality[:, 0].mean() > table.quality[:, 1].mean()  # the reference grader tells them apart
    assert table.cost[:, 0].mean() > 10 * table.cost[:, 1].mean()  # priced from the upstream's usage

    assert (
        main(["train", "--data", "table.csv", "--format", "long", "--predictor", "knn", "--out", "my-knn"])
        == 0
    )
    router = {"name": "auto", "kind": "knn", "artifact": "my-knn", "willingness_to_pay": 0.05}
    Path("my.yaml").write_text(
        yaml.safe_dump({"backends": backends, "routers": [router], "default_router": "auto"})
    )

    replay = ["replay", "--config", "my.yaml", "--data", "table.csv", "--format", "long", "--bootstrap", "0"]
    assert main([*replay, "--out", "report"]) == 0
    report = json.loads(Path("report/report.json").read_text())
    assert [r["router"] for r in report["pooled"]["routers"]][-1] == "auto"
    (point,) = [p for p in report["deployment"]["operating_points"] if p["dataset"] == "pooled"]
    assert point["router"] == "auto" and point["setting"] == "w=0.05"
    assert "auto" in capsys.readouterr().out

    with ServerThread(create_app(load_settings("my.yaml"), load_before_serving=True)) as gateway:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        question = json.loads(Path("prompts.jsonl").read_text().splitlines()[0])["prompt"]
        reply = client.chat.completions.create(model="auto", messages=question)
    assert reply.model_extra is not None
    routing = reply.model_extra["routing"]
    assert routing["router"] == "auto" and routing["backend"] in {"big", "small"}
    predictor, _ = load_artifact(Path("my-knn"), make_embedder(DEMO_EMBEDDER, tmp_path / "cache"))
    embedder = make_embedder(DEMO_EMBEDDER, tmp_path / "cache")
    expected = predictor.predict(embedder.embed([embedding_text([m["content"] for m in question])]))
    served = {c["backend"]: c["predicted_quality"] for c in routing["candidates"]}
    assert [served["big"], served["small"]] == pytest.approx(list(np.asarray(expected.quality[0])), abs=1e-6)
