"""Parsing and checking the cells of an outcome-table file, column by column.

Shared by both file formats. Every function takes the ``source`` (the file) so that its errors name
the file, the column and the row. Rows are counted from 1 at the first data row, so row 1 of a CSV file
is the line after the header. Messages never quote prompt or response text.

Turn lists: RouterBench stores a prompt (and a response) as the text of a Python list literal of turns,
``"['What is 2+2?']"``. Such text is parsed with :func:`ast.literal_eval` (never ``eval``); text that is
not a list literal of strings is one turn as it stands; a real list or tuple (from a pickle, parquet or
JSON file) is taken turn by turn.
"""

from __future__ import annotations

import ast
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from routeyard.arrays import BoolArray, FloatArray, ObjectArray
from routeyard.predictor.outcome_table import OutcomeTableError

JUDGE_SCORED_DATASETS = ("mt-bench",)
"""Datasets whose quality RouterBench records as a judge score from 0 to 10."""


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise :class:`OutcomeTableError` naming every one of ``columns`` that ``frame`` lacks."""
    absent = [column for column in columns if column not in frame.columns]
    if absent:
        raise OutcomeTableError(f"{source}: missing column(s) {', '.join(map(repr, absent))}")


def text_column(frame: pd.DataFrame, column: str, source: str) -> list[str]:
    """The column as strings (numbers are written out, ``7`` → ``"7"``); an empty cell is an error."""
    values = frame[column].tolist()
    for row, value in enumerate(values):
        if _is_null(value):
            raise OutcomeTableError(f"{source}: column {column!r}, row {row + 1}: empty")
    return [value if isinstance(value, str) else _number_text(value) for value in values]


def turns_column(frame: pd.DataFrame, column: str, source: str, *, allow_empty: bool) -> ObjectArray:
    """The column as an object array of ``tuple[str, ...]`` turns (see the module docstring).

    An empty cell becomes ``None`` when ``allow_empty``, else it is an error. Equal cells are parsed
    once, which matters for responses such as ``"['A']"`` repeated thousands of times.
    """
    parsed: dict[Hashable, tuple[str, ...]] = {}
    out = np.empty(len(frame), dtype=object)
    for row, value in enumerate(frame[column].tolist()):
        if _is_null(value):
            if not allow_empty:
                raise OutcomeTableError(f"{source}: column {column!r}, row {row + 1}: empty")
            continue
        key: Hashable = value if isinstance(value, str) else None
        if key is not None and key in parsed:
            out[row] = parsed[key]
            continue
        turns = _turns(value)
        if turns == () and not allow_empty:
            raise OutcomeTableError(f"{source}: column {column!r}, row {row + 1}: no turns")
        if turns is None:
            raise OutcomeTableError(
                f"{source}: column {column!r}, row {row + 1}: expected text or a list of text, "
                f"got {type(value).__name__}"
            )
        if key is not None:
            parsed[key] = turns
        out[row] = turns
    return out


def number_column(frame: pd.DataFrame, column: str, source: str) -> FloatArray:
    """The column as float64, ``NaN`` where a cell is empty.

    Raises :class:`OutcomeTableError` for the first cell that is not a number, or is infinite.
    """
    raw = frame[column]
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(numbers) & ~raw.isna().to_numpy() | np.isinf(numbers)
    if bad.any():
        row = int(np.argmax(bad))
        raise OutcomeTableError(f"{source}: column {column!r}, row {row + 1}: not a finite number")
    return numbers


def dataset_names(eval_names: Sequence[str]) -> ObjectArray:
    """Datasets of rows from their ``eval_name``: every ``mmlu-*`` is the one dataset ``mmlu``."""
    return np.array(["mmlu" if name.startswith("mmlu-") else name for name in eval_names], dtype=object)


def rescale_judge_scores(
    quality: FloatArray, datasets: ObjectArray, source: str
) -> tuple[FloatArray, tuple[str, ...]]:
    """Bring 0–10 judge scores into [0, 1]; returns the new quality and a note per rescaled dataset.

    ``quality`` is (rows, columns) with ``NaN`` for unknown cells. A dataset of
    :data:`JUDGE_SCORED_DATASETS` whose known scores exceed 1 but not 10 is divided by 10 as a whole.
    """
    quality = quality.copy()
    notes = []
    for dataset in JUDGE_SCORED_DATASETS:
        rows = datasets == dataset
        scores = quality[rows]
        if rows.any() and np.nanmax(scores, initial=0.0) > 1.0 and np.nanmax(scores) <= 10.0:
            quality[rows] = scores / 10.0
            notes.append(f"{dataset}: judge scores 0–10 divided by 10 into quality 0–1 ({rows.sum()} rows)")
    return quality, tuple(notes)


def check_unit_interval(quality: FloatArray, columns: Sequence[str], source: str) -> None:
    """Raise :class:`OutcomeTableError` at the first known quality outside [0, 1] (row, column named)."""
    outside = ~np.isnan(quality) & ((quality < 0.0) | (quality > 1.0))
    _check(outside, columns, source, "quality outside [0, 1]")


def check_costs(cost: FloatArray, columns: Sequence[str], source: str) -> None:
    """Raise :class:`OutcomeTableError` at the first negative $ cost (row and column named)."""
    _check(cost < 0.0, columns, source, "negative cost")


def _check(bad: BoolArray, columns: Sequence[str], source: str, what: str) -> None:
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise OutcomeTableError(f"{source}: column {columns[col]!r}, row {row + 1}: {what}")


def _turns(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return _turns_of_text(value)
    if isinstance(value, list | tuple | np.ndarray) and all(isinstance(t, str) for t in value):
        return tuple(value)
    return None


def _turns_of_text(text: str) -> tuple[str, ...]:
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            literal = ast.literal_eval(stripped)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return (text,)
        if isinstance(literal, list) and all(isinstance(turn, str) for turn in literal):
            return tuple(literal)
    return (text,)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def _number_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
