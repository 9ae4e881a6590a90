import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routeyard.cli.main import main
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.long_format import write_long_table
from routeyard.predictor.routerbench_format import load_routerbench_table

SUBSET = SAMPLE_TABLE
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def by_router(result):
    return {router["router"]: router for router in result["routers"]}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["replay", "--data", str(SUBSET), "--out", str(out)]) == 0
    return out


def test_replay_of_the_real_subset_writes_the_three_files(report_dir):
    assert (report_dir / "curves.png").read_bytes()[:8] == PNG_MAGIC
    markdown = (report_dir / "report.md").read_text()
    for heading in ("## Pooled", "## arc-challenge", "## mbpp", "## winogrande"):
        assert heading in markdown
    assert "14 rows repeat a sample_id" in markdown


def test_the_report_ranks_the_baselines_as_routerbench_does(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    assert [d["dataset"] for d in report["datasets"]] == ["arc-challenge", "mbpp", "winogrande"]
    assert sum(d["n_test"] for d in report["datasets"]) == report["pooled"]["n_test"] == 951
    for result in (*report["datasets"], report["pooled"]):
        routers = by_router(result)
        assert routers["oracle"]["aiq"] >= routers["zero"]["aiq"] > routers["random"]["aiq"]
        assert routers["cascade ε=0"]["aiq"] > routers["cascade ε=0.4"]["aiq"]
        # The Zero router's best point is the best single model.
        assert routers["zero"]["max_quality"] == pytest.approx(max(result["single_models"]["quality"]))


def test_perfect_predictions_match_the_oracle_quality(tmp_path):
    out = tmp_path / "r"
    assert main(["replay", "--data", str(SUBSET), "--routers", "oracle,perfect", "--out", str(out)]) == 0
    pooled = by_router(json.loads((out / "report.json").read_text())["pooled"])
    assert pooled["wtp-perfect"]["max_quality"] == pytest.approx(pooled["oracle"]["max_quality"])


def test_a_long_table_with_a_dataset_subset_and_a_predictions_file(tmp_path):
    table = load_routerbench_table(SUBSET, with_responses=False)
    write_long_table(table, tmp_path / "long.parquet")
    predictions = pd.DataFrame(
        {
            "sample_id": np.repeat(table.sample_ids, table.n_models),
            "model": np.tile(table.models, table.n_prompts),
            "predicted_quality": np.full(table.quality.size, 0.5),
            "predicted_cost": table.cost.ravel(),
        }
    )
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    args = ["replay", "--data", str(tmp_path / "long.parquet"), "--format", "long", "--datasets", "mbpp"]
    args += [
        "--routers",
        "zero",
        "--predictions",
        str(tmp_path / "predictions.csv"),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [d["dataset"] for d in report["datasets"]] == ["mbpp"]
    routers = by_router(report["datasets"][0])
    assert set(routers) == {"zero", "wtp-predictions"}
    # Equal predicted quality everywhere: the router only ever buys the cheapest predicted answer.
    assert routers["wtp-predictions"]["aiq"] <= routers["zero"]["aiq"]


def test_bad_input_is_a_one_line_error_and_exit_code_2(tmp_path, capsys):
    assert main(["replay", "--data", str(tmp_path / "absent.csv"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("routeyard: error:") and "absent.csv: no such file" in err
    broken = tmp_path / "broken.csv"
    broken.write_text("sample_id,prompt,eval_name,m,m|total_cost\na,['x'],e,2.0,0.1\n")
    assert main(["replay", "--data", str(broken), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("routeyard: error:") and "column 'm', row 1: quality outside [0, 1]" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_the_console_script_is_installed_and_runs(tmp_path):
    script = shutil.which("routeyard", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run([script, "replay", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--data" in done.stdout
