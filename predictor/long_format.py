"""The long outcome-table format: one row per prompt × model, as the gateway's own logs produce.

Columns: ``sample_id``, ``prompt``, ``model``, ``quality`` (in [0, 1], empty when unknown), ``cost``
($), and optionally ``response`` and ``dataset`` (or RouterBench's ``eval_name``, where every ``mmlu-*``
is the dataset ``mmlu``; with neither, every prompt is in the dataset ``default``). The file may be
``.csv``, ``.csv.gz``, ``.jsonl`` or ``.parquet``; prompts and responses are turn lists, either real
lists (JSON, parquet) or list literals (CSV), see :mod:`routeyard.predictor.table_cells`.

Prompts and models keep the order of their first appearance. Repairs, each reported in
:attr:`OutcomeTable.repairs`: a prompt × model pair with no row, or with no cost, is missing quality at
$0; mt-bench judge scores on 0–10 are divided by 10. Errors (naming file, column and row): an absent
column, a cell that is not a number, quality outside [0, 1], negative cost, a pair given twice, one
sample_id with two different prompts or datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routeyard.arrays import FloatArray, IndexArray, ObjectArray
from routeyard.predictor.outcome_table import OutcomeTable, OutcomeTableError
from routeyard.predictor.table_cells import (
    check_costs,
    check_unit_interval,
    dataset_names,
    number_column,
    require_columns,
    rescale_judge_scores,
    text_column,
    turns_column,
)
from routeyard.predictor.table_files import read_frame, suffix_of, write_frame

SUFFIXES = (".csv", ".csv.gz", ".jsonl", ".parquet")
DEFAULT_DATASET = "default"


def load_long_table(path: str | Path) -> OutcomeTable:
    """Load a long-format file into an :class:`OutcomeTable`; raises :class:`OutcomeTableError`."""
    path = Path(path)
    source = str(path)
    frame = read_frame(path, SUFFIXES)
    require_columns(frame, ["sample_id", "prompt", "model", "quality", "cost"], source)
    sample_ids = text_column(frame, "sample_id", source)
    row_prompt, ids = pd.factorize(pd.Series(sample_ids))
    col_model, models = pd.factorize(pd.Series(text_column(frame, "model", source)))
    _refuse_repeated_pairs(row_prompt, col_model, source)

    datasets = _datasets(frame, source)
    first_rows = _first_row_of_each(row_prompt, len(ids))
    for column, values in (("prompt", frame["prompt"].map(repr)), ("dataset", pd.Series(datasets))):
        _refuse_conflicts(values.to_numpy(), row_prompt, first_rows, column, sample_ids, source)

    quality, notes = rescale_judge_scores(number_column(frame, "quality", source)[:, None], datasets, source)
    check_unit_interval(quality, ["quality"], source)
    cost = number_column(frame, "cost", source)
    check_costs(cost[:, None], ["cost"], source)
    shape = (len(ids), len(models))
    known = _scatter(shape, row_prompt, col_model, ~np.isnan(quality[:, 0]) & ~np.isnan(cost), False)
    responses = None
    if "response" in frame.columns:
        responses = _scatter(
            shape, row_prompt, col_model, turns_column(frame, "response", source, allow_empty=True), None
        )
    return OutcomeTable(
        sample_ids=np.asarray(ids, dtype=np.str_),
        datasets=datasets[first_rows].astype(np.str_),
        prompts=turns_column(frame.iloc[first_rows], "prompt", source, allow_empty=False),
        models=tuple(str(m) for m in models),
        quality=np.where(known, _scatter(shape, row_prompt, col_model, quality[:, 0], 0.0), 0.0),
        missing=~known,
        cost=_scatter(shape, row_prompt, col_model, np.nan_to_num(cost, nan=0.0), 0.0),
        responses=responses,
        repairs=(*_absent_note(len(frame), shape, quality[:, 0], cost), *notes),
        source=source,
    )


def write_long_table(table: OutcomeTable, path: str | Path) -> None:
    """Write ``table`` in the long format, one row per prompt × model, missing quality left empty.

    Turn lists are real lists in ``.jsonl`` and ``.parquet`` and list literals in CSV. Raises
    :class:`OutcomeTableError` for an unknown suffix.
    """
    path = Path(path)
    as_text = suffix_of(path) in (".csv", ".csv.gz")
    n, m = table.quality.shape

    def turns(values: ObjectArray) -> list[object]:
        return [None if v is None else repr(list(v)) if as_text else list(v) for v in values]

    columns: dict[str, object] = {
        "sample_id": np.repeat(table.sample_ids, m),
        "dataset": np.repeat(table.datasets, m),
        "prompt": turns(np.repeat(table.prompts, m)),
        "model": np.tile(np.asarray(table.models, dtype=object), n),
        "quality": np.where(table.missing, np.nan, table.quality).ravel(),
        "cost": table.cost.ravel(),
    }
    if table.responses is not None:
        columns["response"] = turns(table.responses.ravel())
    write_frame(pd.DataFrame(columns), path, SUFFIXES)


def _datasets(frame: pd.DataFrame, source: str) -> ObjectArray:
    if "dataset" in frame.columns:
        return np.asarray(text_column(frame, "dataset", source), dtype=object)
    if "eval_name" in frame.columns:
        return dataset_names(text_column(frame, "eval_name", source))
    return np.full(len(frame), DEFAULT_DATASET, dtype=object)


def _refuse_repeated_pairs(row_prompt: IndexArray, col_model: IndexArray, source: str) -> None:
    pairs = pd.DataFrame({"p": row_prompt, "m": col_model})
    repeated = pairs.duplicated(keep=False).to_numpy()
    if repeated.any():
        rows = np.flatnonzero(repeated)[:2] + 1
        raise OutcomeTableError(
            f"{source}: rows {rows[0]} and {rows[1]} give the same sample_id and model; "
            "merge them into one row (one quality per prompt × model)"
        )


def _first_row_of_each(row_prompt: IndexArray, n_prompts: int) -> IndexArray:
    first = np.full(n_prompts, len(row_prompt), dtype=np.intp)
    np.minimum.at(first, row_prompt, np.arange(len(row_prompt)))
    return first


def _refuse_conflicts(
    values: ObjectArray,
    row_prompt: IndexArray,
    first_rows: IndexArray,
    column: str,
    sample_ids: list[str],
    source: str,
) -> None:
    differs = values != values[first_rows[row_prompt]]
    if differs.any():
        row = int(np.argmax(differs))
        raise OutcomeTableError(
            f"{source}: column {column!r}, row {row + 1}: sample_id {sample_ids[row]!r} has a different "
            f"{column} than in row {first_rows[row_prompt[row]] + 1}"
        )


def _scatter(
    shape: tuple[int, int], rows: IndexArray, cols: IndexArray, values: np.ndarray, fill: object
) -> np.ndarray:
    out = np.full(shape, fill, dtype=values.dtype)
    out[rows, cols] = values
    return out


def _absent_note(
    n_rows: int, shape: tuple[int, int], quality: FloatArray, cost: FloatArray
) -> tuple[str, ...]:
    notes = []
    absent = shape[0] * shape[1] - n_rows
    if absent:
        notes.append(f"{absent} prompt × model pairs have no row: counted as missing quality at $0")
    costless = int((~np.isnan(quality) & np.isnan(cost)).sum())
    if costless:
        notes.append(f"{costless} rows have a quality but no cost: counted as missing quality at $0")
    return tuple(notes)
