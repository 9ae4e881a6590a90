"""``routeyard collect`` against real mock upstreams on loopback, run in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pytest
import yaml

from routeyard.cli.main import main
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.mock_upstream import ServerThread, create_upstream_app

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


def test_unknown_backend_and_parquet_output_are_refused(
    tmp_path: Path, upstream: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, upstream, {"right": "says:B"})
    prompts = _prompts(tmp_path, QUESTIONS)
    assert _collect(config, prompts, tmp_path / "t.csv", "--backends", "nope") == 2
    assert "no backend named nope" in capsys.readouterr().err
    assert _collect(config, prompts, tmp_path / "t.parquet") == 2
    assert "--out must be .csv or .jsonl" in capsys.readouterr().err


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


def test_a_run_killed_mid_way_resumes_with_no_duplicate_and_no_lost_row(
    tmp_path: Path, upstream: str
) -> None:
    prompts = [{"sample_id": f"k{i}", "prompt": f"Which option? {i}", "reference": "B"} for i in range(1500)]
    config = _config(tmp_path, upstream, {"one": "says:B", "two": "says:C"})
    prompt_file, out = _prompts(tmp_path, prompts), tmp_path / "table.csv"
    command = [str(Path(sys.executable).parent / "routeyard"), "collect", "--config", str(config)]
    command += ["--prompts", str(prompt_file), "--out", str(out), "--concurrency", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_text().count("\n") > 100:  # a few batches written, far from done
            process.kill()  # SIGKILL: no clean-up of any kind
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-way"
    assert _collect(config, prompt_file, out) == 0
    rows = pd.read_csv(out)
    pairs = list(zip(rows["sample_id"], rows["model"], strict=True))
    assert len(pairs) == len(set(pairs)) == 3000  # every pair once: none lost, none twice
    assert load_long_table(out).n_prompts == 1500
