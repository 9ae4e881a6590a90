import json
import shutil
from typing import Any

import numpy as np
import pytest

from benchmarks.synthetic import generate_synthetic_table
from routeyard.predictor.artifact import (
    FORMAT_VERSION,
    ArtifactError,
    load_artifact,
    read_manifest,
    save_artifact,
)
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.training import embed_prompts, train_predictor


@pytest.fixture(scope="module")
def table():
    return generate_synthetic_table(seed=0, n_prompts=400)


@pytest.fixture(scope="module", params=["knn", "mlp", "cluster", "logistic", "ensemble"])
def saved(request, table, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param) / "artifact"
    small: dict[str, dict[str, Any]] = {"knn": {"k": 5}, "mlp": {"epochs": 5, "hidden": 16}}
    params = small.get(request.param, {})
    trained = train_predictor(table, HashingEmbedder(), request.param, hyperparameters=params)
    save_artifact(trained.predictor, trained.manifest, directory)
    return trained, directory


def test_an_artifact_round_trips_to_identical_predictions(saved, table):
    trained, directory = saved
    predictor, manifest = load_artifact(directory, HashingEmbedder())
    assert manifest == trained.manifest
    queries = embed_prompts(HashingEmbedder(), table.prompts[:20])
    np.testing.assert_array_equal(
        predictor.predict(queries).quality, trained.predictor.predict(queries).quality
    )
    np.testing.assert_array_equal(predictor.predict(queries).cost, trained.predictor.predict(queries).cost)


def test_the_manifest_records_what_a_user_needs_to_trust_the_artifact(saved, table):
    trained, directory = saved
    raw = json.loads((directory / "manifest.json").read_text())
    assert raw["format_version"] == FORMAT_VERSION and raw["kind"] == trained.manifest.kind
    assert raw["embedder_identity"] == HashingEmbedder().identity and raw["dimension"] == 256
    assert raw["models"] == list(table.models)
    assert len(raw["training_data_sha256"]) == 64
    assert raw["split"]["seed"] == 42 and raw["split"]["train_fraction"] == 0.7
    assert sum(raw["split"]["train_rows_per_dataset"].values()) == len(trained.train_rows)
    assert raw["hyperparameters"]


def edited(directory, tmp_path, **changes):
    copy = tmp_path / "edited"
    shutil.copytree(directory, copy)  # an ensemble keeps its members in subdirectories
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(changes)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_another_embedder_is_refused(saved):
    with pytest.raises(ArtifactError, match="trained with embedder 'hashing-words-bigrams/256'"):
        load_artifact(saved[1], HashingEmbedder(128))


def test_a_wrong_dimension_or_format_version_or_kind_is_refused(saved, tmp_path):
    directory = saved[1]
    with pytest.raises(ArtifactError, match="trained on 384-d embeddings"):
        load_artifact(edited(directory, tmp_path / "d", dimension=384), HashingEmbedder())
    with pytest.raises(ArtifactError, match="format version 99"):
        load_artifact(edited(directory, tmp_path / "v", format_version=99), HashingEmbedder())
    with pytest.raises(ArtifactError, match="unknown predictor kind 'svm'"):
        read_manifest(edited(directory, tmp_path / "k", kind="svm"))


def test_missing_or_damaged_files_are_clear_errors(saved, tmp_path):
    with pytest.raises(ArtifactError, match="not a predictor artifact"):
        load_artifact(tmp_path, HashingEmbedder())
    copy = edited(saved[1], tmp_path / "x")
    for path in copy.rglob("*"):
        if path.is_file() and path != copy / "manifest.json":
            path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ArtifactError, match="damaged"):
        load_artifact(copy, HashingEmbedder())
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="damaged manifest"):
        load_artifact(copy, HashingEmbedder())


def test_saving_replaces_an_old_artifact_whole(saved, table, tmp_path):
    trained, _ = saved
    directory = tmp_path / "a"
    directory.mkdir()
    (directory / "stale.bin").write_bytes(b"old")
    save_artifact(trained.predictor, trained.manifest, directory)
    assert not (directory / "stale.bin").exists() and (directory / "manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no staging directory left behind
