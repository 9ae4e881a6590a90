"""`routeyard replay --plans` and `--bootstrap`, end to end on the bundled sample (hashing embedder)."""

import json

import pytest

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.long_format import write_long_table
from routeyard.predictor.routerbench_format import load_routerbench_table, write_routerbench_table
from tests.evaluation.tables import synthetic_table


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mbpp(tmp_path_factory):
    """The bundled sample's mbpp rows (427 prompts, with their recorded answers), as a RouterBench file."""
    table = load_routerbench_table(SAMPLE_TABLE)
    path = tmp_path_factory.mktemp("mbpp") / "mbpp.csv.gz"
    write_routerbench_table(table.select(table.rows_of("mbpp")), path)
    return path


def report_of(out):
    return json.loads((out / "report.json").read_text())


def by_router(result):
    return {r["router"]: r for r in result["routers"]}


def test_plans_add_the_agreement_router_and_a_plan_router_per_trained_kind(mbpp, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["replay", "--data", str(mbpp), "--routers", "zero", "--embedder", "hashing", "--plans"]
    assert main([*args, "--train", "knn", "--bootstrap", "50", "--out", str(out)]) == 0
    report = report_of(out)
    routers = by_router(report["pooled"])
    assert list(routers) == ["zero", "wtp-knn", "agreement", "wtp-plan-knn"]
    assert routers["agreement"]["aiq"] >= routers["zero"]["aiq"]
    assert len(routers["agreement"]["curve"]["labels"]) == 11 + 45  # every model, every pair of the other ten
    assert report["settings"]["bootstrap_resamples"] == 50
    for router in routers.values():
        interval = router["gain_interval"]
        assert interval["resamples"] == 50 and interval["low"] <= router["gain_over_zero"] <= interval["high"]
    printed = capsys.readouterr().out
    assert "wtp-plan-knn" in printed and "95% paired bootstrap, 50 resamples" in printed
    markdown = (out / "report.md").read_text()
    assert "**agreement** is the Zero router over every plan" in markdown
    assert "gain over Zero [95% CI]" in markdown
    # how each trained router was chosen, and whether a Zero guard is on, is in the report
    assert set(report["selections"]) == {"wtp-knn", "wtp-plan-knn"}
    for record in report["selections"].values():
        assert record["winner"] and record["grid"] and "fallback_datasets" in record["zero_guard"]
    assert "- wtp-plan-knn: selected" in markdown and "- wtp-knn: selected" in markdown


def test_no_bootstrap_gives_gains_without_intervals(mbpp, tmp_path, capsys):
    out = tmp_path / "r"
    args = ["replay", "--data", str(mbpp), "--routers", "zero,random"]
    assert main([*args, "--bootstrap", "0", "--out", str(out)]) == 0
    routers = by_router(report_of(out)["pooled"])
    assert routers["random"]["gain_interval"] is None and routers["random"]["gain_over_zero"] < 0
    assert "paired bootstrap" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--bootstrap", "-5", "--out", str(out)])


def test_plans_need_recorded_responses(tmp_path, capsys):
    write_long_table(synthetic_table(per_dataset=20, graded=True), tmp_path / "long.parquet")  # no answers
    args = ["replay", "--data", str(tmp_path / "long.parquet"), "--format", "long", "--plans"]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    assert "need the recorded responses" in capsys.readouterr().err
