"""`routeyard train` and `routeyard replay --predictor/--train`, end to end with the hashing embedder."""

import json

import pytest

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE

SUBSET = SAMPLE_TABLE


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


def pooled_routers(out):
    report = json.loads((out / "report.json").read_text())
    return {r["router"]: r for r in report["pooled"]["routers"]}


def test_train_then_replay_the_artifact_beside_the_baselines(tmp_path, capsys):
    artifact = tmp_path / "knn"
    assert (
        main(
            [
                *["train", "--data", str(SUBSET), "--embedder", "hashing", "--k", "20", "--folds", "2"],
                *["--out", str(artifact)],
            ]
        )
        == 0
    )
    assert "trained knn on 2213 of 3164 prompts" in capsys.readouterr().out
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["hyperparameters"]["k"] == 20 and (artifact / "index.faiss").exists()
    assert manifest["selection"]["winner"]["k"] == 20 and len(manifest["selection"]["grid"]) == 4

    out = tmp_path / "report"
    args = ["replay", "--data", str(SUBSET), "--routers", "oracle,zero", "--embedder", "hashing"]
    assert main([*args, "--predictor", str(artifact), "--out", str(out)]) == 0
    routers = pooled_routers(out)
    assert set(routers) == {"oracle", "zero", "wtp-knn"}
    assert routers["oracle"]["aiq"] > routers["wtp-knn"]["aiq"] > 0.5
    assert "warning" not in capsys.readouterr().err  # trained on this very train split
    assert (tmp_path / "cache" / "embeddings.sqlite").exists()


def test_replay_trains_knn_and_mlp_on_the_fly(tmp_path):
    out = tmp_path / "report"
    args = [
        "replay",
        "--data",
        str(SUBSET),
        "--datasets",
        "mbpp",
        "--routers",
        "zero",
        "--embedder",
        "hashing",
    ]
    # pinned down to one grid point of knn and two small ones of mlp, so the search stays quick
    pinned = ["--k", "10", "--prior-k", "100", "--shrinkage", "0.5", "--hidden", "16", "--epochs", "3"]
    assert main([*args, "--train", "knn,mlp", *pinned, "--out", str(out)]) == 0
    assert set(pooled_routers(out)) == {"zero", "wtp-knn", "wtp-mlp"}


def test_an_artifact_of_another_embedder_or_other_models_is_an_error(tmp_path, capsys):
    artifact = tmp_path / "knn"
    train = ["train", "--data", str(SUBSET), "--embedder", "hashing", "--no-search"]
    assert main([*train, "--out", str(artifact)]) == 0
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["embedder_identity"] = "all-MiniLM-L6-v2/mean-pooled"
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    args = ["replay", "--data", str(SUBSET), "--embedder", "hashing", "--predictor", str(artifact)]
    assert main([*args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "trained with embedder 'all-MiniLM-L6-v2/mean-pooled'" in err and "Traceback" not in err
    assert main(["replay", "--data", str(SUBSET), "--train", "svm", "--out", str(tmp_path / "r")]) == 2
    assert "unknown predictor kind 'svm'; known: " in capsys.readouterr().err


def test_a_hyperparameter_named_like_a_command_option_gets_the_kinds_prefix(tmp_path, capsys):
    # MlpParameters.seed meets train's own --seed (the split's): it is --mlp-seed, and both apply
    out = tmp_path / "mlp"
    args = [
        "train",
        "--data",
        str(SUBSET),
        "--predictor",
        "mlp",
        "--embedder",
        "hashing",
        "--no-cache",
        "--no-search",
    ]
    assert (
        main([*args, "--seed", "7", "--mlp-seed", "3", "--epochs", "2", "--hidden", "8", "--out", str(out)])
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["seed"] == 7
    assert {k: manifest["hyperparameters"][k] for k in ("seed", "epochs", "hidden")} == {
        "seed": 3,
        "epochs": 2,
        "hidden": 8,
    }
    assert main([*args, "--shrinkage", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert "--shrinkage is a hyperparameter of knn, not of mlp" in capsys.readouterr().err
