"""The long outcome table ``routeyard collect`` writes: appended to in batches, read back to resume.

The file is the long format :func:`routeyard.predictor.long_format.load_long_table` reads: ``.csv``
(turn lists as list literals), ``.jsonl`` or ``.parquet`` (real lists), with the columns ``sample_id,
dataset, prompt, model, quality, cost, response`` and an ``error`` column (ignored by the loader) holding
the error class of a call that failed; such a row has an empty quality (missing, never 0) and an empty
response.

Rows are appended a batch at a time, each batch in one write then flushed and synced, so a crash loses
at most the batch being written. A crash in the middle of a write leaves an incomplete last line: the
next :func:`open_outcome_file` cuts it off (those pairs are collected again).

A parquet file cannot be appended to, so its rows are appended to a journal beside it,
``<out>.partial.jsonl`` (:func:`journal_path`), exactly like a ``.jsonl`` table; closing the file (a
clean end, the budget's stop, Ctrl-C) rewrites the parquet file from its old rows and the journal's,
each pair once, into a new file that atomically replaces it, and only then deletes the journal. After a
crash the parquet file holds the rows of the runs that ended, the journal the rest: the next run reads
both and merges them when it ends.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from routeyard.predictor.table_files import suffix_of

SUFFIXES = (".csv", ".jsonl", ".parquet")
COLUMNS = ("sample_id", "dataset", "prompt", "model", "quality", "cost", "response", "error")
PARQUET_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("dataset", pa.string()),
        ("prompt", pa.list_(pa.string())),
        ("model", pa.string()),
        ("quality", pa.float64()),
        ("cost", pa.float64()),
        ("response", pa.list_(pa.string())),
        ("error", pa.string()),
    ]
)


class OutcomeFileError(ValueError):
    """The output file cannot be used (its kind, or an existing file that is not one of ours)."""


@dataclass(frozen=True)
class OutcomeRow:
    """One prompt × backend: quality None (missing) when the call or its grading failed."""

    sample_id: str
    dataset: str
    prompt: tuple[str, ...]
    model: str
    quality: float | None
    cost: float
    response: str | None
    error: str | None


class OutcomeFile:
    """An open outcome table appended to in batches; use as a context manager (closing writes the rest)."""

    def __init__(self, path: Path, done: set[tuple[str, str]], batch_size: int) -> None:
        self.path = path
        """The file rows are appended to (a parquet table's journal)."""
        self.done = done
        """The (sample_id, model) pairs already in the file, and those added since."""
        self._as_csv = suffix_of(path) == ".csv"
        self._batch_size = batch_size
        self._pending: list[OutcomeRow] = []
        needs_header = self._as_csv and (not path.exists() or path.stat().st_size == 0)
        self._file: IO[str] = path.open("a", encoding="utf-8", newline="")
        if needs_header:
            self._write(_csv_text([list(COLUMNS)]))

    def add(self, row: OutcomeRow) -> None:
        """Queue ``row``; writes the queue once it holds a batch."""
        self._pending.append(row)
        self.done.add((row.sample_id, row.model))
        if len(self._pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Append every queued row to the file and sync it to disk."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        if self._as_csv:
            self._write(_csv_text([_csv_cells(row) for row in rows]))
        else:
            self._write("".join(json.dumps(_json_record(row), ensure_ascii=False) + "\n" for row in rows))

    def close(self) -> None:
        """Flush and close."""
        try:
            self.flush()
        finally:
            self._file.close()

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def __enter__(self) -> OutcomeFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ParquetOutcomeFile(OutcomeFile):
    """A parquet outcome table: rows go to its journal; closing merges the journal into the parquet file."""

    def __init__(self, path: Path, done: set[tuple[str, str]], batch_size: int) -> None:
        super().__init__(journal_path(path), done, batch_size)
        self.parquet_path = path

    def close(self) -> None:
        """Flush and close the journal, then merge it into the parquet file (see the module docstring)."""
        super().close()
        merge_journal(self.parquet_path)


def journal_path(path: Path) -> Path:
    """Where the rows of the parquet table at ``path`` are appended until they are merged into it."""
    return path.with_name(path.name + ".partial.jsonl")


def open_outcome_file(path: Path, batch_size: int = 20) -> OutcomeFile:
    """The outcome table at ``path`` opened for appending, knowing which pairs it already holds (for
    parquet: in the file and in its journal).

    Raises :class:`OutcomeFileError` for a kind other than ``.csv``/``.jsonl``/``.parquet`` and for an
    existing file without our columns.
    """
    if suffix_of(path) not in SUFFIXES:
        raise OutcomeFileError(f"{path}: --out must be .csv, .jsonl or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix_of(path) == ".parquet":
        journal = journal_path(path)
        done = _appended_pairs(journal)
        if path.exists():
            done |= _parquet_pairs(_read_parquet(path))
        return ParquetOutcomeFile(path, done, batch_size)
    return OutcomeFile(path, _appended_pairs(path), batch_size)


def merge_journal(path: Path) -> None:
    """Rewrite the parquet table at ``path`` with its journal's rows added (a pair already in the file
    keeps the file's row), replacing it atomically, then delete the journal; nothing without a journal."""
    journal = journal_path(path)
    if not journal.exists():
        return
    _cut_incomplete_line(journal)
    old = _read_parquet(path) if path.exists() else PARQUET_SCHEMA.empty_table()
    seen = _parquet_pairs(old)
    added = []
    with journal.open(encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            pair = (str(record["sample_id"]), str(record["model"]))
            if pair not in seen:
                seen.add(pair)
                added.append(record)
    merged = pa.concat_tables([old, pa.Table.from_pylist(added, schema=PARQUET_SCHEMA)])
    staging = path.with_name(path.name + ".writing")
    with staging.open("wb") as file:
        pq.write_table(merged, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staging, path)
    _sync_directory(path.parent)
    journal.unlink()


def _read_parquet(path: Path) -> pa.Table:
    """The parquet table at ``path`` in :data:`PARQUET_SCHEMA`; raises OutcomeFileError for another."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise OutcomeFileError(
            f"{path}: exists but cannot be read as parquet ({type(exc).__name__})"
        ) from exc
    if sorted(table.column_names) != sorted(COLUMNS):
        raise OutcomeFileError(
            f"{path}: exists but is not a table routeyard collect wrote (columns {', '.join(COLUMNS)})"
        )
    try:
        return table.select(list(COLUMNS)).cast(PARQUET_SCHEMA).replace_schema_metadata(None)
    except (pa.ArrowException, ValueError) as exc:
        raise OutcomeFileError(f"{path}: exists but its columns are not collect's kinds") from exc


def _parquet_pairs(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table["sample_id"].to_pylist(), table["model"].to_pylist(), strict=True))


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _appended_pairs(path: Path) -> set[tuple[str, str]]:
    """The pairs in the appended-to file at ``path`` after cutting off an incomplete last line."""
    if not path.exists() or path.stat().st_size == 0:
        return set()
    _cut_incomplete_line(path)
    return _pairs_in(path)


def _cut_incomplete_line(path: Path) -> None:
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    with path.open("r+b") as file:
        file.truncate(data.rfind(b"\n") + 1)


def _pairs_in(path: Path) -> set[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        if suffix_of(path) == ".csv":
            reader = csv.DictReader(file)
            if reader.fieldnames is None or not {"sample_id", "model"} <= set(reader.fieldnames):
                raise OutcomeFileError(f"{path}: exists but has no 'sample_id' and 'model' columns")
            return {(row["sample_id"], row["model"]) for row in reader}
        pairs = set()
        for number, line in enumerate(file, start=1):
            try:
                record = json.loads(line)
                pairs.add((str(record["sample_id"]), str(record["model"])))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise OutcomeFileError(
                    f"{path}: row {number} is not a JSON object with 'sample_id' and 'model'"
                ) from None
        return pairs


def _csv_cells(row: OutcomeRow) -> list[object]:
    return [
        row.sample_id,
        row.dataset,
        repr(list(row.prompt)),
        row.model,
        "" if row.quality is None else repr(row.quality),
        repr(row.cost),
        "" if row.response is None else repr([row.response]),
        row.error or "",
    ]


def _json_record(row: OutcomeRow) -> dict[str, object]:
    return {
        "sample_id": row.sample_id,
        "dataset": row.dataset,
        "prompt": list(row.prompt),
        "model": row.model,
        "quality": row.quality,
        "cost": row.cost,
        "response": None if row.response is None else [row.response],
        "error": row.error,
    }


def _csv_text(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()
