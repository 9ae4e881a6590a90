"""The prompts file ``routeyard collect`` reads: jsonl, csv or parquet, one prompt a row.

Columns: ``prompt`` (text, or a list of chat messages ``{"role", "content"}`` as real JSON in jsonl and
parquet or JSON text in csv), optional ``sample_id`` (default: the row number, from 1), ``dataset``
(default ``default``) and ``reference`` (the right answer, text). Every problem is a
:class:`PromptFileError` naming the file, and where it applies the row (from 1 at the first data row)
and the column; messages never quote prompt text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeyard.predictor.outcome_table import OutcomeTableError
from routeyard.predictor.table_files import read_frame

SUFFIXES = (".jsonl", ".csv", ".parquet")
DEFAULT_DATASET = "default"


class PromptFileError(ValueError):
    """The prompts file cannot be read (the message names file, row and column)."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt: its id, dataset, chat messages (what the backends get) and reference answer."""

    sample_id: str
    dataset: str
    messages: tuple[dict[str, str], ...]
    reference: str | None

    @property
    def turns(self) -> tuple[str, ...]:
        """The prompt as the outcome table stores it: the messages' texts."""
        return tuple(message["content"] for message in self.messages)


def read_prompts(path: Path) -> list[PromptRow]:
    """Every row of the prompts file at ``path``; raises :class:`PromptFileError`.

    Sample ids must be unique; a row with no ``prompt`` (or an empty one) is an error.
    """
    try:
        frame = read_frame(path, SUFFIXES)
    except OutcomeTableError as exc:
        raise PromptFileError(str(exc)) from None
    if "prompt" not in frame.columns:
        raise PromptFileError(f"{path}: missing column 'prompt'")
    rows: list[PromptRow] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(frame.to_dict(orient="records"), start=1):
        row = _row(record, index, path)
        if row.sample_id in seen:
            raise PromptFileError(
                f"{path}: column 'sample_id', row {index}: the same id as row {seen[row.sample_id]}"
            )
        seen[row.sample_id] = index
        rows.append(row)
    return rows


def _row(record: Mapping[Any, Any], index: int, path: Path) -> PromptRow:
    def where(column: str) -> str:
        return f"{path}: column {column!r}, row {index}"

    sample_id = _text(record.get("sample_id"), where("sample_id"))
    dataset = _text(record.get("dataset"), where("dataset"))
    reference = _text(record.get("reference"), where("reference"))
    return PromptRow(
        sample_id=sample_id if sample_id is not None else str(index),
        dataset=dataset if dataset is not None else DEFAULT_DATASET,
        messages=_messages(record.get("prompt"), where("prompt")),
        reference=reference,
    )


def _text(value: Any, where: str) -> str | None:
    """A text cell: None when empty, numbers written out (7.0 → "7"), anything else an error."""
    if _is_empty(value):
        return None
    if isinstance(value, bool):
        raise PromptFileError(f"{where}: expected text, got a boolean")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    raise PromptFileError(f"{where}: expected text, got {type(value).__name__}")


def _messages(value: Any, where: str) -> tuple[dict[str, str], ...]:
    if _is_empty(value) or (isinstance(value, str) and not value.strip()):
        raise PromptFileError(f"{where}: empty")
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise PromptFileError(f"{where}: looks like chat messages but is not valid JSON") from None
    if isinstance(value, str):
        return ({"role": "user", "content": value},)
    if hasattr(value, "tolist"):  # parquet gives numpy arrays
        value = value.tolist()
    if not isinstance(value, list) or not value:
        raise PromptFileError(f"{where}: expected text or a non-empty list of chat messages")
    return tuple(_message(message, f"{where}, message {i}") for i, message in enumerate(value, start=1))


def _message(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PromptFileError(f"{where}: expected an object with 'role' and 'content'")
    role, content = value.get("role"), value.get("content")
    if not isinstance(role, str) or not isinstance(content, str):
        raise PromptFileError(f"{where}: 'role' and 'content' must both be text")
    return {"role": role, "content": content}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
