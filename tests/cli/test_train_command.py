"""`routeyard train`: the cross-validated search, ``--no-search``, ``--plans``, on small synthetic tables."""

import json

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.cli.main import main
from routeyard.policy.plans import plan_from_spec
from routeyard.predictor.kinds.knn import KnnParameters
from routeyard.predictor.routerbench_format import write_routerbench_table
from routeyard.predictor.split import split_by_dataset

FAST = ["--embedder", "hashing", "--no-cache"]


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=4, n_prompts=400, with_responses=True)


@pytest.fixture(scope="module")
def table_file(table, tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "outcomes.csv"
    write_routerbench_table(table, path)
    return path


def train(data, out, *options):
    assert main(["train", "--data", str(data), *FAST, *options, "--out", str(out)]) == 0
    return json.loads((out / "manifest.json").read_text())


def test_train_searches_by_default_and_records_grid_scores_and_winner(table_file, tmp_path, capsys):
    manifest = train(table_file, tmp_path / "knn", "--folds", "3")
    selection = manifest["selection"]
    assert selection["folds"] == 3 and len(selection["grid"]) == 8
    assert all(len(point["fold_aiq"]) == 3 for point in [*selection["grid"], selection["zero"]])
    best = max(selection["grid"], key=lambda point: point["cv_aiq"])
    assert selection["winner"] == best["hyperparameters"]
    assert {k: manifest["hyperparameters"][k] for k in selection["winner"]} == selection["winner"]
    assert "by 3-fold cross-validation inside the train split" in capsys.readouterr().out


def test_no_search_trains_the_given_values_and_the_defaults(table_file, tmp_path):
    manifest = train(table_file, tmp_path / "knn", "--no-search", "--k", "5")
    assert manifest["selection"] == {}
    assert {k: manifest["hyperparameters"][k] for k in KnnParameters.model_fields} == {
        **KnnParameters().model_dump(),
        "k": 5,
    }


def test_the_selection_is_the_same_whatever_the_test_rows_hold(table, table_file, tmp_path):
    poisoned = table.select(np.arange(table.n_prompts))
    test = np.concatenate([s.test for s in split_by_dataset(table).values()])
    poisoned.quality[test] = 1.0 - poisoned.quality[test]
    poisoned.cost[test] *= 7.0
    poisoned_file = tmp_path / "poisoned.csv"
    write_routerbench_table(poisoned, poisoned_file)
    options = ("--folds", "2", "--k", "10")
    clean = train(table_file, tmp_path / "clean", *options)
    dirty = train(poisoned_file, tmp_path / "dirty", *options)
    assert json.dumps(dirty["selection"]) == json.dumps(clean["selection"])
    assert dirty["training_data_sha256"] == clean["training_data_sha256"]


def test_train_plans_predicts_plans_and_records_their_specs(table, table_file, tmp_path, capsys):
    one_point = ("--folds", "2", "--k", "10", "--prior-k", "100", "--shrinkage", "0.5")
    manifest = train(table_file, tmp_path / "plans", "--plans", *one_point)
    plans = [plan_from_spec(spec) for spec in manifest["plans"]]
    assert [plan.name for plan in plans] == manifest["models"]
    assert [p.spec() for p in plans[: table.n_models]] == [
        {"kind": "single", "model": m} for m in table.models
    ]
    assert len(plans) > table.n_models and manifest["selection"]["grid"][0]["hyperparameters"]["k"] == 10
    assert f"× {len(plans)} plans" in capsys.readouterr().out
