import gzip
import pickle

import numpy as np
import pandas as pd
import pytest

from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.outcome_table import OutcomeTable, OutcomeTableError
from routeyard.predictor.routerbench_format import load_routerbench_table, write_routerbench_table

SUBSET = SAMPLE_TABLE
SECRET_PROMPT = "the secret prompt text"


@pytest.fixture(scope="module")
def subset():
    return load_routerbench_table(SUBSET)


def small_frame(**overrides):
    """A 3-row, 2-model wide table as RouterBench writes it, with cells overridable per column."""
    frame = pd.DataFrame(
        {
            "sample_id": ["a.1", "b.1", "c.1"],
            "prompt": [repr([SECRET_PROMPT]), "['turn one', 'turn two']", "plain text, no list"],
            "eval_name": ["mmlu-anatomy", "mmlu-virology", "mbpp"],
            "cheap": [0.0, 1.0, np.nan],
            "dear": [1.0, 1.0, 0.5],
            "cheap|model_response": ["['B']", "['A']", None],
            "dear|model_response": ["['A']", "['A']", "['def f(): pass']"],
            "cheap|total_cost": [0.001, 0.001, 0.002],
            "dear|total_cost": [0.01, 0.02, 0.03],
            "oracle_model_to_route_to": ["dear", "cheap", "dear"],
        }
    )
    for column, values in overrides.items():
        frame[column] = values
    return frame


def write_csv(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_real_subset_loads_with_its_duplicate_ids_repaired_and_reported(subset):
    assert (subset.n_prompts, subset.n_models) == (3164, 11)
    assert subset.dataset_names == ["arc-challenge", "mbpp", "winogrande"]
    assert {d: len(subset.rows_of(d)) for d in subset.dataset_names} == {
        "arc-challenge": 1470,
        "mbpp": 427,
        "winogrande": 1267,
    }
    assert len(subset.repairs) == 1 and subset.repairs[0].startswith("14 rows repeat a sample_id")
    assert subset.models[0] == "gpt-3.5-turbo-1106"  # the order of the |model_response columns
    assert subset.source == str(SUBSET)


def test_real_subset_cells_are_read_exactly(subset):
    row = int(np.flatnonzero(subset.sample_ids == "arc-challenge.test.1")[0])
    gpt4 = subset.models.index("gpt-4-1106-preview")
    assert subset.quality[row, gpt4] == 1.0 and not subset.missing[row, gpt4]
    assert subset.cost[row, gpt4] == pytest.approx(0.00519)
    assert subset.responses[row, gpt4] == ("A",)
    assert len(subset.prompts[row]) == 1 and subset.prompts[row][0].startswith("George wants to warm")


def test_of_a_repeated_sample_id_the_row_with_most_known_qualities_is_kept(subset):
    raw = pd.read_csv(SUBSET)
    rows = raw[raw.sample_id == "arc-challenge.val.136"]
    fuller = rows.iloc[int(rows.iloc[:, 3:14].notna().sum(axis=1).argmax())]
    kept = int(np.flatnonzero(subset.sample_ids == "arc-challenge.val.136")[0])
    assert subset.prompts[kept] == tuple(eval_turns(fuller.prompt))
    assert subset.missing[kept].sum() == 1  # the fuller row still lacks one quality: kept as missing


def eval_turns(text):
    import ast

    return ast.literal_eval(text)


def test_without_responses_skips_them(subset):
    table = load_routerbench_table(SUBSET, with_responses=False)
    assert table.responses is None
    np.testing.assert_array_equal(table.quality, subset.quality)


def test_cells_turns_missing_quality_and_mmlu_datasets(tmp_path):
    table = load_routerbench_table(write_csv(tmp_path, small_frame()))
    assert table.models == ("cheap", "dear")
    assert list(table.datasets) == ["mmlu", "mmlu", "mbpp"]
    assert list(table.prompts) == [(SECRET_PROMPT,), ("turn one", "turn two"), ("plain text, no list",)]
    assert table.missing.tolist() == [[False, False], [False, False], [True, False]]
    assert table.quality[2, 0] == 0.0 and table.cost[2, 0] == 0.002
    assert table.responses is not None
    assert table.responses[2, 0] is None and table.responses[2, 1] == ("def f(): pass",)


@pytest.mark.parametrize("suffix", [".pkl", ".csv", ".csv.gz", ".parquet"])
def test_every_file_kind_round_trips(tmp_path, subset, suffix):
    path = tmp_path / f"table{suffix}"
    write_routerbench_table(subset, path)
    again = load_routerbench_table(path)
    for name in ("sample_ids", "datasets", "quality", "missing", "cost"):
        np.testing.assert_array_equal(getattr(again, name), getattr(subset, name))
    assert again.models == subset.models
    assert list(again.prompts) == list(subset.prompts)
    assert again.responses is not None and subset.responses is not None
    assert np.array_equal(again.responses, subset.responses)


def test_mmlu_eval_names_survive_a_round_trip(tmp_path):
    table = load_routerbench_table(write_csv(tmp_path, small_frame(sample_id=["mmlu-anatomy.1", "x.2", "c"])))
    write_routerbench_table(table, tmp_path / "again.csv")
    assert pd.read_csv(tmp_path / "again.csv").eval_name.tolist() == ["mmlu-anatomy", "mmlu", "mbpp"]


def test_a_pickled_frame_with_real_lists_loads(tmp_path):
    frame = small_frame(prompt=[["one"], ["two", "three"], ["four"]])
    frame.to_pickle(tmp_path / "t.pkl")
    assert list(load_routerbench_table(tmp_path / "t.pkl").prompts) == [("one",), ("two", "three"), ("four",)]


def test_mt_bench_judge_scores_are_rescaled_and_reported(tmp_path):
    frame = small_frame(eval_name=["mt-bench"] * 3, cheap=[3.0, 10.0, 7.5])
    table = load_routerbench_table(write_csv(tmp_path, frame))
    np.testing.assert_allclose(table.quality[:, 0], [0.3, 1.0, 0.75])
    np.testing.assert_allclose(table.quality[:, 1], [0.1, 0.1, 0.05])
    assert any("mt-bench" in note and "divided by 10" in note for note in table.repairs)


def test_a_graded_cell_without_cost_is_missing_and_reported(tmp_path):
    frame = small_frame(**{"dear|total_cost": [0.01, None, 0.03]})
    table = load_routerbench_table(write_csv(tmp_path, frame))
    assert table.missing[1, 1] and table.cost[1, 1] == 0.0 and table.quality[1, 1] == 0.0
    assert any("1 cells have a quality but no cost" in note for note in table.repairs)


def test_loaded_tables_are_outcome_tables(tmp_path):
    assert isinstance(load_routerbench_table(write_csv(tmp_path, small_frame())), OutcomeTable)


BAD_CELLS = [
    ({"dear": [1.0, "abc", 0.5]}, r"column 'dear', row 2: not a finite number"),
    ({"dear": [1.0, 1.5, 0.5]}, r"column 'dear', row 2: quality outside \[0, 1\]"),
    ({"cheap": [-0.1, 1.0, 0.0]}, r"column 'cheap', row 1: quality outside \[0, 1\]"),
    ({"dear|total_cost": [0.01, -0.02, 0.03]}, r"column 'dear\|total_cost', row 2: negative cost"),
    ({"cheap|total_cost": [0.01, "inf", 0.03]}, r"column 'cheap\|total_cost', row 2: not a finite number"),
    ({"prompt": [None, "['x']", "['y']"]}, r"column 'prompt', row 1: empty"),
    ({"prompt": ["['x']", "[]", "['y']"]}, r"column 'prompt', row 2: no turns"),
    ({"sample_id": ["a", None, "c"]}, r"column 'sample_id', row 2: empty"),
    ({"eval_name": ["a", "b", None]}, r"column 'eval_name', row 3: empty"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CELLS)
def test_a_bad_cell_is_an_error_naming_file_column_and_row(tmp_path, overrides, message):
    path = write_csv(tmp_path, small_frame(**overrides))
    with pytest.raises(OutcomeTableError, match=message) as caught:
        load_routerbench_table(path)
    assert str(path) in str(caught.value)
    assert SECRET_PROMPT not in str(caught.value)


@pytest.mark.parametrize("column", ["sample_id", "prompt", "eval_name", "dear", "cheap|total_cost"])
def test_an_absent_column_is_named(tmp_path, column):
    path = write_csv(tmp_path, small_frame().drop(columns=[column]))
    with pytest.raises(OutcomeTableError, match=f"missing column.*{column.replace('|', '.')}"):
        load_routerbench_table(path)


def test_a_table_without_model_columns_is_explained(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"sample_id": ["a"], "prompt": ["x"], "eval_name": ["e"]}))
    with pytest.raises(OutcomeTableError, match=r"no model columns.*\|model_response"):
        load_routerbench_table(path)


def bad_files(tmp_path):
    header_only = tmp_path / "header.csv"
    small_frame().iloc[:0].to_csv(header_only, index=False)
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("\n\n")
    (tmp_path / "notgzip.csv.gz").write_text("sample_id,prompt\n")
    with gzip.open(tmp_path / "cut.csv.gz", "wb") as f:
        f.write(small_frame().to_csv(index=False).encode())
    (tmp_path / "cut.csv.gz").write_bytes((tmp_path / "cut.csv.gz").read_bytes()[:60])
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04 not a pickle")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (tmp_path / "table.xlsx").write_bytes(b"whatever")
    return {
        "header.csv": "no rows",
        "empty.csv": "the file is empty",
        "blank.csv": "holds no columns",
        "notgzip.csv.gz": "cannot be read as .csv.gz",
        "cut.csv.gz": "cannot be read as .csv.gz",
        "junk.parquet": "cannot be read as .parquet",
        "junk.pkl": "cannot be read as .pkl",
        "list.pkl": "holds a list, not a table",
        "table.xlsx": "unknown file kind '.xlsx'",
        "absent.csv": "no such file",
    }


def test_bad_files_are_clear_errors_never_tracebacks(tmp_path):
    for name, message in bad_files(tmp_path).items():
        with pytest.raises(OutcomeTableError, match=message):
            load_routerbench_table(tmp_path / name)


def test_writing_to_an_unknown_kind_is_an_error(tmp_path, subset):
    with pytest.raises(OutcomeTableError, match="unknown file kind"):
        write_routerbench_table(subset, tmp_path / "t.jsonl")
