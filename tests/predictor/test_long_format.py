import json

import numpy as np
import pandas as pd
import pytest

from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.long_format import load_long_table, write_long_table
from routeyard.predictor.outcome_table import OutcomeTableError
from routeyard.predictor.routerbench_format import load_routerbench_table

SUBSET = SAMPLE_TABLE
SECRET_PROMPT = "the secret prompt text"


def rows(**overrides):
    """Two prompts × two models in long form; the pair (q2, dear) is absent."""
    frame = pd.DataFrame(
        {
            "sample_id": ["q1", "q1", "q2"],
            "prompt": [repr([SECRET_PROMPT])] * 2 + ["['hi', 'again']"],
            "model": ["cheap", "dear", "cheap"],
            "quality": [0.0, 1.0, 0.5],
            "cost": [0.001, 0.01, 0.002],
            "response": ["['no']", "['yes']", None],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def write_csv(tmp_path, frame):
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    return path


def test_rows_become_a_table_with_absent_pairs_missing_and_reported(tmp_path):
    table = load_long_table(write_csv(tmp_path, rows()))
    assert list(table.sample_ids) == ["q1", "q2"] and table.models == ("cheap", "dear")
    assert list(table.prompts) == [(SECRET_PROMPT,), ("hi", "again")]
    assert table.quality.tolist() == [[0.0, 1.0], [0.5, 0.0]]
    assert table.missing.tolist() == [[False, False], [False, True]]
    assert table.cost.tolist() == [[0.001, 0.01], [0.002, 0.0]]
    assert table.responses is not None
    assert table.responses[0, 1] == ("yes",) and table.responses[1, 1] is None
    assert list(table.datasets) == ["default", "default"]
    assert table.repairs == ("1 prompt × model pairs have no row: counted as missing quality at $0",)


def test_dataset_or_eval_name_columns_name_the_dataset(tmp_path):
    assert list(load_long_table(write_csv(tmp_path, rows(dataset=["a", "a", "b"]))).datasets) == ["a", "b"]
    named = load_long_table(write_csv(tmp_path, rows(eval_name=["mmlu-anatomy"] * 2 + ["mbpp"])))
    assert list(named.datasets) == ["mmlu", "mbpp"]


def test_jsonl_with_real_lists_loads(tmp_path):
    path = tmp_path / "long.jsonl"
    records = [
        {"sample_id": 7, "prompt": ["a", "b"], "model": "m", "quality": 1, "cost": 0.5, "response": ["c"]},
        {"sample_id": 8, "prompt": "just text", "model": "m", "quality": None, "cost": 0.25},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    table = load_long_table(path)
    assert list(table.sample_ids) == ["7", "8"]
    assert list(table.prompts) == [("a", "b"), ("just text",)]
    assert table.missing.tolist() == [[False], [True]] and table.cost.tolist() == [[0.5], [0.25]]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".jsonl", ".parquet"])
def test_the_real_subset_round_trips_through_every_kind(tmp_path, suffix):
    wide = load_routerbench_table(SUBSET)
    path = tmp_path / f"long{suffix}"
    write_long_table(wide, path)
    table = load_long_table(path)
    for name in ("sample_ids", "datasets", "quality", "missing"):
        np.testing.assert_array_equal(getattr(table, name), getattr(wide, name))
    np.testing.assert_allclose(table.cost, wide.cost, rtol=1e-14)  # JSON keeps 15 significant digits
    assert table.models == wide.models
    assert list(table.prompts) == list(wide.prompts)
    assert table.responses is not None and wide.responses is not None
    assert np.array_equal(table.responses, wide.responses)


BAD = [
    ({"quality": [0.0, "x", 0.5]}, r"column 'quality', row 2: not a finite number"),
    ({"quality": [0.0, 2.0, 0.5]}, r"column 'quality', row 2: quality outside \[0, 1\]"),
    ({"cost": [0.001, 0.01, -1.0]}, r"column 'cost', row 3: negative cost"),
    ({"model": ["cheap", None, "cheap"]}, r"column 'model', row 2: empty"),
    ({"model": ["cheap", "cheap", "cheap"]}, r"rows 1 and 2 give the same sample_id and model"),
    ({"prompt": ["['x']", "['y']", "['z']"]}, r"row 2: sample_id 'q1' has a different prompt"),
    ({"dataset": ["a", "b", "c"]}, r"column 'dataset', row 2: sample_id 'q1' has a different dataset"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD)
def test_bad_rows_are_errors_naming_file_column_and_row(tmp_path, overrides, message):
    path = write_csv(tmp_path, rows(**overrides))
    with pytest.raises(OutcomeTableError, match=message) as caught:
        load_long_table(path)
    assert str(path) in str(caught.value) and SECRET_PROMPT not in str(caught.value)


def test_absent_columns_and_bad_files_are_errors(tmp_path):
    with pytest.raises(OutcomeTableError, match=r"missing column.*'cost'"):
        load_long_table(write_csv(tmp_path, rows().drop(columns=["cost"])))
    (tmp_path / "long.jsonl").write_text('{"sample_id": "a", "prompt": ')
    with pytest.raises(OutcomeTableError, match=r"cannot be read as \.jsonl"):
        load_long_table(tmp_path / "long.jsonl")
    with pytest.raises(OutcomeTableError, match=r"unknown file kind '\.pkl'"):
        load_long_table(tmp_path / "long.pkl")
