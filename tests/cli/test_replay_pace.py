"""`routeyard replay --pace`: willingness-to-pay routers paced to spend targets, on the bundled sample."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from routeyard.cli.main import main
from tests.cli.conftest import CHEAP, DEAR, MIDDLE


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


def replay(data: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["replay", "--data", str(data), "--routers", "zero", "--bootstrap", "0", "--embedder", "hashing"]
    assert main([*args, "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text())


def runs_of(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["router"], r["target"]): r for r in report["pacing"]["runs"]}


def test_every_router_is_paced_to_every_target(arc, knn, tmp_path, capsys):
    out = tmp_path / "r"
    targets = ["--pace", "25%", "--pace", "50%", "--pace", "$0.002"]
    report = replay(arc, out, "--predictor", str(knn), "--train", "knn", *targets)
    pacing = report["pacing"]
    assert pacing["reference_model"] == DEAR  # highest mean train quality on arc-challenge
    assert pacing["n_prompts"] == report["pooled"]["n_test"]
    runs = runs_of(report)
    routers = [r["router"] for r in report["pooled"]["routers"] if r["router"].startswith("wtp-")]
    assert len(routers) == 2
    assert set(runs) == {(router, t) for router in routers for t in ("25%", "50%", "$0.002")}
    reference = pacing["reference_usd_per_prompt"]
    for (_, target), run in runs.items():
        expected = {"25%": 0.25 * reference, "50%": 0.5 * reference, "$0.002": 0.002}[target]
        assert run["target_usd_per_prompt"] == pytest.approx(expected)
        # the controller holds spend to the target, or to the most the router can spend if that is less
        assert 0.9 * min(1.0, run["reach_ratio"]) <= run["spend_ratio"] <= 1.1
        assert run["spend_usd_per_prompt"] == pytest.approx(run["spend_ratio"] * expected)
        best = run["best_fixed_w"]
        assert best["spend_usd_per_prompt"] <= run["spend_usd_per_prompt"] + 1e-12  # spends no more
        assert run["quality_ratio"] == pytest.approx(run["quality"] / best["quality"])
        assert 0.95 <= run["quality_ratio"] <= 1.1
        series = run["series"]
        assert len(series) == 20 and series[-1]["prompt"] == pacing["n_prompts"]
        assert series[-1]["spend_ratio"] == pytest.approx(run["spend_ratio"])
    cheap, dear = runs[(routers[0], "25%")], runs[(routers[0], "50%")]
    assert dear["spend_usd_per_prompt"] > cheap["spend_usd_per_prompt"]  # a bigger target spends more
    markdown = (out / "report.md").read_text()
    assert "## Budget pacing" in markdown and f"always-{DEAR}" in markdown
    for router, target in runs:
        assert f"| {router} | {target} |" in markdown and f"- {router} at {target}: " in markdown
    printed = capsys.readouterr().out
    assert f"budget pacing over {pacing['n_prompts']} test prompts" in printed
    assert printed.count("spend/target") == 6
    trained = [run for (router, _), run in runs.items() if router == "wtp-knn-trained"]
    assert all(0.95 <= run["spend_ratio"] <= 1.05 for run in trained)  # targets its predictions can reach


def test_a_config_paces_its_willingness_to_pay_routers_only(arc, knn, tmp_path, capsys):
    routers = [
        {"name": "no-dear", "kind": "knn", "artifact": str(knn), "exclude": [DEAR]},
        {"name": "every-backend", "kind": "knn", "artifact": str(knn), "willingness_to_pay": 0.05},
        {"name": "always-dear", "kind": "fixed", "backend": DEAR},
    ]
    settings = {
        "backends": [
            {"name": b, "base_url": "http://127.0.0.1:9/v1", "model": b} for b in (CHEAP, MIDDLE, DEAR)
        ],
        "routers": routers,
        "embedder": "hashing",
    }
    config = tmp_path / "routeyard.yaml"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    report = replay(arc, tmp_path / "r", "--config", str(config), "--pace", "20%")
    runs = runs_of(report)
    assert list(runs) == [("no-dear", "20%"), ("every-backend", "20%")]  # a fixed router has no w to pace
    assert report["pacing"]["reference_model"] == DEAR
    every = runs[("every-backend", "20%")]
    assert every["reach_ratio"] > 1.0 and 0.9 <= every["spend_ratio"] <= 1.1
    # without gpt-4 the router cannot spend 20 % of always-gpt-4: it spends what it can, and says so
    no_dear = runs[("no-dear", "20%")]
    assert no_dear["reach_ratio"] < 1.0 and no_dear["spend_ratio"] == pytest.approx(
        no_dear["reach_ratio"], rel=0.1
    )
    assert "out of reach" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["cheap", "0%", "-5%", "$-1", "$inf", "25 %%"])
def test_a_target_that_is_not_one_is_refused_naming_the_flag(arc, tmp_path, capsys, target):
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--data", str(arc), f"--pace={target}", "--out", str(tmp_path / "r")])
    assert exited.value.code != 0
    err = capsys.readouterr().err
    assert "--pace" in err and "not a spend target" in err
    assert not (tmp_path / "r").exists()


def test_pacing_without_a_willingness_to_pay_router_is_an_error(arc, tmp_path, capsys):
    assert (
        main(
            ["replay", "--data", str(arc), "--routers", "zero", "--pace", "25%", "--out", str(tmp_path / "r")]
        )
        == 2
    )
    assert "--pace needs a willingness-to-pay router" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
