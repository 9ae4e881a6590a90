"""A demo that starts at once (issue 18): the shipped artifacts, their build, and the long steps' bars.

The progress bars show on a terminal only, so those tests run the command in a pseudo-terminal with a
window size (tqdm draws nothing in a terminal 0 columns wide) and read what it drew.
"""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from routeyard.demo import build_artifacts
from routeyard.demo.artifacts import (
    MODEL_ARTIFACT,
    PACKAGED_ARTIFACTS,
    SAMPLE_TABLE,
    demo_artifact,
    load_sample,
)
from routeyard.demo.config import demo_config
from routeyard.judges.judge_training import held_out_rows, judged_cells
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.training import train_rows

ROUTEYARD = Path(sys.executable).parent / "routeyard"


def test_the_first_start_uses_the_shipped_artifacts_and_builds_nothing(tmp_path, capsys):
    started = time.perf_counter()
    config = demo_config(tmp_path / "cache")
    assert time.perf_counter() - started < 10  # building them takes ≈ 20 s on 2 cores
    assert "building" not in capsys.readouterr().out
    artifacts = {
        router["name"]: Path(router["artifact"]) for router in yaml.safe_load(config.read_text())["routers"]
    }
    assert {path.parent for path in artifacts.values()} == {PACKAGED_ARTIFACTS}
    assert sorted(p.name for p in (tmp_path / "cache" / "demo").iterdir()) == ["routeyard.yaml"]


def test_the_shipped_artifacts_are_what_the_build_script_makes_byte_for_byte(capsys):
    assert build_artifacts.main(["--check"]) == 0
    assert "byte for byte" in capsys.readouterr().out
    provenance = (PACKAGED_ARTIFACTS / build_artifacts.PROVENANCE).read_text()
    for directory in PACKAGED_ARTIFACTS.iterdir():
        if directory.is_dir():
            assert f"## {directory.name}" in provenance
            assert all(f"`{p.name}` sha256 " in provenance for p in directory.iterdir())


def test_another_embedder_gets_an_artifact_built_into_the_cache_once(tmp_path, capsys):
    table, embedder = load_sample(), HashingEmbedder()
    built = demo_artifact(MODEL_ARTIFACT, table, embedder, tmp_path)
    assert built.parent == tmp_path and (built / "manifest.json").exists()
    assert "building the demo knn artifact" in capsys.readouterr().out
    assert demo_artifact(MODEL_ARTIFACT, table, embedder, tmp_path) == built
    assert "building" not in capsys.readouterr().out  # the second start finds it


def test_train_judge_shows_a_bar_of_every_text_it_embeds_on_a_terminal(tmp_path):
    out = tmp_path / "judge"
    drawn = _in_terminal(
        [ROUTEYARD, "train-judge", "--data", SAMPLE_TABLE, "--embedder", "hashing", "--out", out], tmp_path
    )
    assert "trained a learned judge" in drawn
    table = load_sample(with_responses=True)
    splits = (train_rows(table)[0], held_out_rows(table))
    cells = [judged_cells(table, rows) for rows in splits]
    texts = sum(len(c.rows) + len(np.unique(c.rows)) for c in cells)  # answers and their prompts
    assert "embed prompts and answers:" in drawn and f"/{texts} [" in drawn


def test_export_onnx_shows_its_step_and_no_third_party_loading_output(tmp_path):
    drawn = _in_terminal([ROUTEYARD, "export-onnx", "--out", tmp_path / "onnx"], tmp_path)
    assert "export all-MiniLM-L6-v2 to ONNX:" in drawn and "1/1" in drawn
    assert "Loading weights" not in drawn and "LOAD REPORT" not in drawn
    assert (tmp_path / "onnx" / "model.onnx").exists()


def test_without_a_terminal_no_bar_is_drawn(tmp_path):
    result = subprocess.run(
        [ROUTEYARD, "train-judge", "--data", SAMPLE_TABLE, "--embedder", "hashing", "--out", tmp_path / "j"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ROUTEYARD_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    assert "embed prompts and answers" not in result.stderr


def _in_terminal(command: list[str | Path], tmp_path: Path, timeout: float = 300) -> str:
    """Run ``command`` with stdout and stderr on a 40 × 150 pseudo-terminal; everything it drew."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 150, 0, 0))
    env = {**os.environ, "ROUTEYARD_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(list(map(str, command)), stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the command ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    try:
        returncode = process.wait(timeout=max(deadline - time.monotonic(), 1.0))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        pytest.fail(f"{command[1]} did not end within {timeout} s")
    drawn = b"".join(chunks).decode(errors="replace")
    assert returncode == 0, drawn
    return drawn
