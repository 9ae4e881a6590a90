"""`routeyard replay --config`: a gateway config's routers replayed as deployed, on the bundled sample."""

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE, demo_config
from tests.cli.conftest import CHEAP, DEAR, MIDDLE


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


def config_file(
    directory: Path,
    routers: list[dict[str, Any]],
    backends: tuple[str, ...] = (CHEAP, MIDDLE, DEAR),
    embedder: str = "hashing",
) -> Path:
    """A gateway config over OpenAI-compatible ``backends`` (never called: the replay is offline)."""
    settings = {
        "backends": [{"name": b, "base_url": "http://127.0.0.1:9/v1", "model": b} for b in backends],
        "routers": routers,
        "embedder": embedder,
    }
    path = directory / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def replay(data: Path, out: Path, *extra: str) -> dict[str, Any]:
    assert main(["replay", "--data", str(data), "--bootstrap", "0", "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text())


def aiqs(result: dict[str, Any]) -> dict[str, float]:
    return {r["router"]: r["aiq"] for r in result["routers"]}


def points(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["router"], p["dataset"]): p for p in report["deployment"]["operating_points"]}


def arc_point(report: dict[str, Any], router: str) -> tuple[float, float]:
    """The router's operating point on arc-challenge: ($ per prompt, quality)."""
    point = points(report)[(router, "arc-challenge")]
    return point["cost"], point["quality"]


def single_models(result: dict[str, Any]) -> dict[str, tuple[float, float]]:
    models = result["single_models"]
    return {m: (c, q) for m, c, q in zip(models["labels"], models["cost"], models["quality"], strict=True)}


def test_the_demo_config_replays_to_the_aiq_of_its_artifact_replayed_by_flags(tmp_path, capsys):
    config = demo_config(tmp_path / "demo-cache")
    by_config = replay(SAMPLE_TABLE, tmp_path / "config", "--routers", "zero", "--config", str(config))
    knn = yaml.safe_load(config.read_text())["routers"][0]
    by_flags = replay(SAMPLE_TABLE, tmp_path / "flags", "--routers", "zero", "--predictor", knn["artifact"])
    for configured, flagged in zip(
        [by_config["pooled"], *by_config["datasets"]],
        [by_flags["pooled"], *by_flags["datasets"]],
        strict=True,
    ):
        assert aiqs(configured)["router-knn"] == pytest.approx(aiqs(flagged)["wtp-knn"], abs=1e-12)
    deployment = by_config["deployment"]
    assert deployment["config"] == str(config)
    assert deployment["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert deployment["skipped"] == {} and deployment["missing_backends"] == []
    assert {router for router, _ in points(by_config)} == {"router-knn", "router-plans", "router-cascade"}
    assert points(by_config)[("router-knn", "pooled")]["setting"] == "w=0.05"
    assert points(by_config)[("router-cascade", "pooled")]["setting"] == "B=0.01"
    printed = capsys.readouterr().out
    assert "operating points" in printed and "router-plans" in printed
    assert "## Deployed config" in (tmp_path / "config" / "report.md").read_text()


def test_the_table_is_narrowed_to_the_configs_backends_and_the_ones_it_lacks_are_reported(
    arc, knn, tmp_path, capsys
):
    routers = [{"name": "auto", "kind": "knn", "artifact": str(knn), "willingness_to_pay": 0.5}]
    config = config_file(tmp_path, routers, backends=(CHEAP, MIDDLE, DEAR, "gpt-4o"))
    report = replay(arc, tmp_path / "out", "--routers", "zero", "--config", str(config))
    assert set(single_models(report["pooled"])) == {CHEAP, MIDDLE, DEAR}
    assert report["deployment"]["missing_backends"] == ["gpt-4o"]
    assert len(report["deployment"]["unused_models"]) == 8
    assert "the table lacks: gpt-4o" in capsys.readouterr().err


def test_a_router_never_chooses_what_it_excludes_and_a_fixed_router_sits_on_its_backend(arc, knn, tmp_path):
    routers: list[dict[str, Any]] = [
        {"name": "only-cheap", "kind": "knn", "artifact": str(knn), "exclude": [MIDDLE, DEAR]},
        {"name": "always-dear", "kind": "fixed", "backend": DEAR},
        {"name": "best", "kind": "knn", "artifact": str(knn)},
    ]
    report = replay(
        arc, tmp_path / "out", "--routers", "zero", "--config", str(config_file(tmp_path, routers))
    )
    models = single_models(report["datasets"][0])
    assert arc_point(report, "only-cheap") == pytest.approx(models[CHEAP])
    assert arc_point(report, "always-dear") == pytest.approx(models[DEAR])
    assert points(report)[("best", "arc-challenge")]["setting"] == "w=inf"
    assert arc_point(report, "best")[1] > models[CHEAP][1]  # w = inf: better than the cheapest alone


def test_a_cascade_is_walked_in_its_order_within_its_budget_with_its_judge(arc, knn, tmp_path):
    def cascade(name, budget, judge):
        order = [CHEAP, DEAR]
        return {
            "name": name,
            "kind": "cascade",
            "artifact": str(knn),
            "order": order,
            "budget_usd": budget,
            "judge": judge,
        }

    agreement = {"kind": "agreement", "second": MIDDLE}
    routers = [
        cascade("no-money", 1e-9, {"kind": "heuristics"}),
        cascade("agreeing", 10.0, agreement),
        cascade("graded", 10.0, {"kind": "llm", "backend": MIDDLE}),
    ]
    report = replay(
        arc, tmp_path / "out", "--routers", "zero", "--config", str(config_file(tmp_path, routers))
    )
    models = single_models(report["datasets"][0])
    assert arc_point(report, "no-money") == pytest.approx(models[CHEAP])
    # the agreement judge's second answer is paid for every judged step: at least cheap + middle
    cost, quality = arc_point(report, "agreeing")
    assert cost > models[CHEAP][0] + models[MIDDLE][0]
    assert quality > models[CHEAP][1]
    skipped = report["deployment"]["skipped"]
    assert set(skipped) == {"graded"} and "no table records" in skipped["graded"]
    assert math.isfinite(aiqs(report["pooled"])["agreeing"])


def test_an_artifact_that_does_not_fit_the_config_is_a_clear_error(arc, knn, tmp_path, capsys):
    routers = [{"name": "auto", "kind": "knn", "artifact": str(knn)}]
    other_embedder = config_file(tmp_path, routers, embedder="minilm-static")
    args = ["replay", "--data", str(arc), "--out", str(tmp_path / "out"), "--config"]
    assert main([*args, str(other_embedder)]) != 0
    err = capsys.readouterr().err
    assert "router auto" in err and str(knn) in err and "embedder" in err
    other_models = config_file(tmp_path, routers, backends=("gpt-4o", "llama-3"))
    assert main([*args, str(other_models)]) != 0
    assert "none of its artifact's models" in capsys.readouterr().err
