"""`routeyard train-judge` and `routeyard replay --judge/--train-judge`, end to end on the real subset.

The hashing embedder keeps them fast; the learned judge's figures with MiniLM are in RESULTS.md.
"""

import json

import pytest

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE

SUBSET = SAMPLE_TABLE


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


def test_train_a_judge_then_replay_a_cascade_with_it(tmp_path, capsys):
    judge = tmp_path / "judge"
    assert main(["train-judge", "--data", str(SUBSET), "--embedder", "hashing", "--out", str(judge)]) == 0
    printed = capsys.readouterr().out
    assert "trained a learned judge on" in printed and "ROC AUC" in printed
    manifest = json.loads((judge / "manifest.json").read_text())
    assert manifest["kind"] == "learned-judge" and len(manifest["models"]) == 11
    assert 0.5 < manifest["metrics"]["test_split"]["roc_auc"] <= 1.0  # better than a coin

    out = tmp_path / "replay"
    assert (
        main(
            [
                "replay",
                "--data",
                str(SUBSET),
                "--embedder",
                "hashing",
                "--judge",
                str(judge),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "judge judge=judge on test answers" in printed.out
    assert "was not trained on this table's train split" not in printed.err
    report = json.loads((out / "report.json").read_text())
    routers = {r["router"] for r in report["pooled"]["routers"]}
    assert {"cascade ε=0", "cascade judge=judge", "zero"} <= routers
    (measured,) = report["pooled"]["judges"]
    assert measured["judge"] == "judge=judge" and 0.0 <= measured["false_accept_rate"] <= 1.0
    assert "Real judges on the test answers" in (out / "report.md").read_text()


def test_replay_warns_of_a_judge_that_saw_the_test_split_and_trains_one_itself(tmp_path, capsys):
    judge = tmp_path / "judge-all-rows"
    train = ["train-judge", "--data", str(SUBSET), "--embedder", "hashing", "--train-fraction", "1.0"]
    assert main([*train, "--out", str(judge)]) == 0
    replay = ["replay", "--data", str(SUBSET), "--embedder", "hashing", "--routers", "zero"]
    assert main([*replay, "--judge", str(judge), "--train-judge", "--out", str(tmp_path / "r")]) == 0
    assert f"{judge} was not trained on this table's train split" in capsys.readouterr().err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert {j["judge"] for j in report["pooled"]["judges"]} == {"judge=judge-all-rows", "judge=learned"}
    assert "cascade judge=learned" in {r["router"] for r in report["pooled"]["routers"]}


def test_train_judge_on_a_table_without_answers_is_a_clear_error(tmp_path, capsys):
    long_table = tmp_path / "long.csv"
    long_table.write_text("sample_id,dataset,prompt,model,quality,cost\ns1,d,hi,m,1.0,0.1\n")
    code = main(
        [
            "train-judge",
            "--data",
            str(long_table),
            "--format",
            "long",
            "--embedder",
            "hashing",
            "--out",
            str(tmp_path / "j"),
        ]
    )
    assert code == 2
    assert "has no recorded responses to judge" in capsys.readouterr().err
