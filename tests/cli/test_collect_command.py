"""``routeyard collect`` against real mock upstreams on loopback, run in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from routeyard.cli.arguments import load_table
from routeyard.cli.main import main
from routeyard.judges.judge_training import score_table
from routeyard.judges.kinds.learned import LearnedJudge
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread

CENT_PER_CALL = 1000.0  # $ per million input tokens: the mock's 10 prompt tokens cost $0.01


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with ServerThread(create_upstream_app()) as server:
        yield server.url + "/v1"


def _config(tmp_path: Path, url: str, models: dict[str, str]) -> Path:
    backends = [
        {"name": name, "base_url": url, "model": model, "input_usd_per_million": CENT_PER_CALL, "retries": 0}
        for name, model in models.items()
    ]
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump({"backends": backends}))
    return path


def _prompts(tmp_path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _collect(config: Path, prompts: Path, out: Path, *extra: str) -> int:
    return main(["collect", "--config", str(config), "--prompts", str(prompts), "--out", str(out), *extra])


QUESTIONS = [{"sample_id": f"q{i}", "prompt": f"Which option? {i}", "reference": "B"} for i in range(6)]


def test_reference_grading_scores_the_right_answer_1_and_the_wrong_0(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"right": "says:The answer is B", "wrong": "says:The answer is C"})
    out = tmp_path / "table.csv"
    assert _collect(config, _prompts(tmp_path, QUESTIONS), out) == 0
    table = load_long_table(out)
    assert set(table.models) == {"right", "wrong"}
    right, wrong = table.models.index("right"), table.models.index("wrong")
    assert table.n_prompts == 6
    assert (table.quality[:, right] == 1.0).all() and (table.quality[:, wrong] == 0.0).all()
    assert not table.missing.any()
    assert table.cost == pytest.approx(0.01)


def test_llm_grader_grades_each_answer(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"good": "says:[good] fine", "poor": "says:meh", "judge": "grader"})
    out = tmp_path / "table.jsonl"
    rows: list[dict[str, object]] = [
        {"prompt": "Write a haiku"},
        {"prompt": [{"role": "user", "content": "Hi"}], "dataset": "chat"},
    ]
    assert (
        _collect(config, _prompts(tmp_path, rows), out, "--backends", "good,poor", "--grader", "llm:judge")
        == 0
    )
    table = load_long_table(out)
    assert set(table.models) == {"good", "poor"}
    assert list(table.quality[:, table.models.index("good")]) == pytest.approx([0.9, 0.9])
    assert list(table.quality[:, table.models.index("poor")]) == pytest.approx([0.2, 0.2])
    assert list(table.sample_ids) == ["1", "2"] and list(table.datasets) == ["default", "chat"]


def test_max_usd_stops_and_a_rerun_finishes_without_duplicates(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B", "wrong": "says:C"})
    prompts, out = _prompts(tmp_path, QUESTIONS), tmp_path / "table.csv"
    assert _collect(config, prompts, out, "--max-usd", "0.03", "--concurrency", "1") == 0
    stopped = capsys.readouterr().out
    assert "stopped at the --max-usd budget" in stopped
    first = pd.read_csv(out)
    assert 3 <= len(first) < 12
    assert f"{len(first)}/12" in stopped

    assert _collect(config, prompts, out) == 0
    final = pd.read_csv(out)
    assert len(final) == 12 and not final.duplicated(["sample_id", "model"]).any()
    assert final.iloc[: len(first)].equals(first)  # nothing written before was lost or rewritten
    assert load_long_table(out).n_prompts == 6


def test_a_row_cut_by_a_crash_is_collected_again(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    prompts, out = _prompts(tmp_path, QUESTIONS), tmp_path / "table.csv"
    assert _collect(config, prompts, out) == 0
    whole = out.read_text()
    out.write_text(whole[: whole.rindex("\n", 0, len(whole) - 1) + 10])  # the last row cut mid-line
    assert _collect(config, prompts, out) == 0
    table = load_long_table(out)
    assert table.n_prompts == 6 and (table.quality == 1.0).all()


def test_a_failing_backend_is_recorded_as_missing_not_zero(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B", "broken": "fail-500"})
    out = tmp_path / "table.csv"
    assert _collect(config, _prompts(tmp_path, QUESTIONS[:2]), out) == 0
    frame = pd.read_csv(out)
    broken = frame[frame["model"] == "broken"]
    assert len(broken) == 2 and broken["quality"].isna().all()
    assert broken["error"].str.startswith("Upstream").all() and broken["response"].isna().all()
    table = load_long_table(out)
    assert table.missing[:, table.models.index("broken")].all()
    assert not table.missing[:, table.models.index("right")].any()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "p.jsonl",
            '{"prompt": "a", "reference": "B"}\n{"sample_id": "x", "reference": "B"}\n',
            "column 'prompt', row 2",
        ),
        ("p.jsonl", '{"prompt": "a", "reference": "B"}\n{"prompt": "b"}\n', "column 'reference', row 2"),
        ("p.csv", "sample_id,prompt,reference\n1,a,B\n1,b,B\n", "column 'sample_id', row 2"),
        ("p.csv", "question,reference\na,B\n", "missing column 'prompt'"),
        (
            "p.jsonl",
            '{"prompt": [{"role": "user"}], "reference": "B"}\n',
            "column 'prompt', row 1, message 1",
        ),
        ("p.jsonl", "not json at all\n", "cannot be read as .jsonl"),
        ("p.txt", "hello\n", "unknown file kind"),
    ],
)
def test_bad_prompt_files_are_clear_errors(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str], name: str, content: str, expected: str
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    prompts = tmp_path / name
    prompts.write_text(content)
    assert _collect(config, prompts, tmp_path / "table.csv") == 2
    error = capsys.readouterr().err
    assert expected in error and str(prompts) in error and "Traceback" not in error
    assert not (tmp_path / "table.csv").exists()


def test_unknown_backend_and_unknown_output_kind_are_refused(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    prompts = _prompts(tmp_path, QUESTIONS)
    assert _collect(config, prompts, tmp_path / "t.csv", "--backends", "nope") == 2
    assert "no backend named nope" in capsys.readouterr().err
    assert _collect(config, prompts, tmp_path / "t.xlsx") == 2
    assert "--out must be .csv, .jsonl or .parquet" in capsys.readouterr().err


def test_parquet_and_csv_prompt_files_with_chat_messages(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Pick one"}]
    parquet = tmp_path / "p.parquet"
    pd.DataFrame(
        {
            "prompt": [messages, [{"role": "user", "content": "x"}]],
            "reference": ["B", "b"],
            "dataset": ["mc", "mc"],
        }
    ).to_parquet(parquet)
    csv_file = tmp_path / "p.csv"
    pd.DataFrame({"sample_id": [7], "prompt": [json.dumps(messages)], "reference": ["B"]}).to_csv(csv_file)
    for prompts, out in ((parquet, tmp_path / "a.csv"), (csv_file, tmp_path / "b.jsonl")):
        assert _collect(config, prompts, out) == 0
        table = load_long_table(out)
        assert tuple(table.prompts[0]) == ("Be brief.", "Pick one") and (table.quality == 1.0).all()


@pytest.mark.parametrize("out_name", ["table.csv", "table.parquet"])
def test_a_run_killed_mid_way_resumes_with_no_duplicate_and_no_lost_row(
    tmp_path: Path, upstream: str, out_name: str
) -> None:
    prompts = [{"sample_id": f"k{i}", "prompt": f"Which option? {i}", "reference": "B"} for i in range(1500)]
    config = _config(tmp_path, upstream, {"one": "says:B", "two": "says:C"})
    prompt_file, out = _prompts(tmp_path, prompts), tmp_path / out_name
    appended = out if out.suffix == ".csv" else tmp_path / "table.parquet.partial.jsonl"  # the journal
    assert _collect(config, prompt_file, out, "--max-usd", "0.05") == 0  # a first run's rows in `out`
    assert out.exists() and not (out.suffix == ".parquet" and appended.exists())
    command = [str(Path(sys.executable).parent / "routeyard"), "collect", "--config", str(config)]
    command += ["--prompts", str(prompt_file), "--out", str(out), "--concurrency", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if appended.exists() and appended.read_text().count("\n") > 100:  # a few batches, far from done
            process.kill()  # SIGKILL: no clean-up of any kind
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-way"
    assert _collect(config, prompt_file, out) == 0
    rows = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
    pairs = list(zip(rows["sample_id"], rows["model"], strict=True))
    assert len(pairs) == len(set(pairs)) == 3000  # every pair once: none lost, none twice
    assert load_long_table(out).n_prompts == 1500
    assert out.suffix == ".csv" or not appended.exists()  # the journal is merged and gone


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child before exec: SIGINT handled by default. A job a shell starts in the background (as CI
    may run the suite) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_writes_the_parquet_file_with_every_row_collected(tmp_path: Path, upstream: str) -> None:
    # far more than the run gets through before the Ctrl-C, even when the test's own loop is starved
    prompts = [{"sample_id": f"c{i}", "prompt": f"Which? {i}", "reference": "B"} for i in range(20_000)]
    config = _config(tmp_path, upstream, {"one": "says:B"})
    prompt_file, out = _prompts(tmp_path, prompts), tmp_path / "table.parquet"
    journal = tmp_path / "table.parquet.partial.jsonl"
    command = [str(Path(sys.executable).parent / "routeyard"), "collect", "--config", str(config)]
    command += ["--prompts", str(prompt_file), "--out", str(out), "--concurrency", "1"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_at_a_terminal,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and journal.read_text().count("\n") > 100:
            process.send_signal(signal.SIGINT)  # Ctrl-C
            break
        time.sleep(0.01)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, f"the run ended before it could be interrupted: {stderr[-2000:]}"
    assert f"every row collected is in {out}" in stderr
    rows = pd.read_parquet(out)
    assert 100 < len(rows) < 20_000 and not rows.duplicated(["sample_id", "model"]).any()
    assert not journal.exists()
    assert load_long_table(out).n_prompts == len(rows)


def test_parquet_output_stops_at_the_budget_resumes_and_loads_as_train_loads_it(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:The answer is B", "broken": "fail-500"})
    prompts, out = _prompts(tmp_path, QUESTIONS), tmp_path / "runs" / "table.parquet"
    assert _collect(config, prompts, out, "--max-usd", "0.02", "--concurrency", "1") == 0
    assert "stopped at the --max-usd budget" in capsys.readouterr().out
    first = pd.read_parquet(out)  # the budget's stop wrote the parquet file, and removed the journal
    assert 2 <= len(first) < 12 and not (tmp_path / "runs" / "table.parquet.partial.jsonl").exists()

    assert _collect(config, prompts, out) == 0
    final = pd.read_parquet(out)
    assert len(final) == 12 and not final.duplicated(["sample_id", "model"]).any()
    assert final.iloc[: len(first)].equals(first)  # the rows of the first run, unchanged and first
    assert final.loc[final["model"] == "broken", "error"].str.startswith("Upstream").all()
    table = load_table(out, "long", with_responses=True)  # what `routeyard train --format long` calls
    right, broken = table.models.index("right"), table.models.index("broken")
    assert table.n_prompts == 6 and (table.quality[:, right] == 1.0).all()
    assert table.missing[:, broken].all() and not table.missing[:, right].any()
    assert table.responses is not None and table.responses[0, right] == ("The answer is B",)


def test_a_parquet_file_collect_did_not_write_is_refused(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    out = tmp_path / "other.parquet"
    pd.DataFrame({"sample_id": ["a"], "score": [1.0]}).to_parquet(out)
    assert _collect(config, _prompts(tmp_path, QUESTIONS), out) == 2
    assert f"{out}: exists but is not a table routeyard collect wrote" in capsys.readouterr().err
    assert list(pd.read_parquet(out).columns) == ["sample_id", "score"]  # left as it was


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEYARD_CACHE_DIR", str(tmp_path / "cache"))


def _trained_judge(tmp_path: Path, config: Path, prompts: Path) -> Path:
    """A learned judge (hashing embedder) trained on every answer of the config's backends, graded by
    reference."""
    assert _collect(config, prompts, tmp_path / "reference.csv") == 0
    judge = tmp_path / "judge"
    train = ["train-judge", "--data", str(tmp_path / "reference.csv"), "--format", "long"]
    assert main([*train, "--embedder", "hashing", "--train-fraction", "1.0", "--out", str(judge)]) == 0
    return judge


@pytest.mark.usefixtures("private_cache")
def test_a_learned_judge_grades_with_the_scores_it_gives_those_answers(tmp_path: Path, upstream: str) -> None:
    config = _config(tmp_path, upstream, {"right": "says:The answer is B", "echo": "echo"})
    prompts = _prompts(tmp_path, QUESTIONS)
    judge = _trained_judge(tmp_path, config, prompts)

    out = tmp_path / "judged.jsonl"
    assert _collect(config, prompts, out, "--grader", f"judge:{judge}") == 0
    table = load_long_table(out)
    loaded = LearnedJudge.load(judge, HashingEmbedder())
    expected = score_table(loaded, table, np.arange(table.n_prompts))  # the judge on the recorded answers
    assert not table.missing.any() and ((table.quality >= 0.0) & (table.quality <= 1.0)).all()
    assert table.quality == pytest.approx(expected, abs=1e-12)
    right, echo = table.models.index("right"), table.models.index("echo")
    assert table.quality[:, right].min() > table.quality[:, echo].max()  # it learned which backend is right
    assert table.cost == pytest.approx(0.01)  # the judge costs nothing: only the answers are paid


@pytest.mark.usefixtures("private_cache")
def test_a_judge_trained_with_another_embedder_than_the_configs_is_a_clear_error(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:The answer is B", "echo": "echo"})
    prompts = _prompts(tmp_path, QUESTIONS)
    judge = _trained_judge(tmp_path, config, prompts)
    manifest = json.loads((judge / "manifest.json").read_text())
    manifest["embedder_identity"] = "all-MiniLM-L6-v2/mean-pooled/normalised/left-truncated-256"
    (judge / "manifest.json").write_text(json.dumps(manifest))  # as if trained with --embedder minilm
    capsys.readouterr()
    out = tmp_path / "judged.csv"
    assert _collect(config, prompts, out, "--grader", f"judge:{judge}") == 2  # the config: minilm-static
    error = capsys.readouterr().err
    assert str(judge) in error and "set `embedder:` in the config" in error and not out.exists()


@pytest.mark.usefixtures("private_cache")
def test_a_missing_or_damaged_judge_artifact_is_a_clear_error_before_any_call(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    prompts, out = _prompts(tmp_path, QUESTIONS), tmp_path / "table.csv"
    missing = tmp_path / "no-judge"
    assert _collect(config, prompts, out, "--grader", f"judge:{missing}") == 2
    error = capsys.readouterr().err
    assert f"--grader: {missing}: not a learned-judge artifact" in error
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("{not json")
    assert _collect(config, prompts, out, "--grader", f"judge:{damaged}") == 2
    error = capsys.readouterr().err
    assert str(damaged) in error and "damaged manifest" in error and "Traceback" not in error
    assert _collect(config, prompts, out, "--grader", "judge:") == 2
    assert "'judge:<artifact>'" in capsys.readouterr().err
    assert not out.exists()
