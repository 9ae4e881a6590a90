"""Reading and writing data frames by file suffix, with every failure turned into an OutcomeTableError.

Both outcome-table formats (RouterBench's wide one and the long one) are data frames on disk. This
module knows the file kinds and nothing about columns:

============  ==========================  ==========================
suffix        read with                   written with
============  ==========================  ==========================
``.pkl``      ``pandas.read_pickle``      ``DataFrame.to_pickle``
``.csv``      ``pandas.read_csv``         ``DataFrame.to_csv``
``.csv.gz``   ``pandas.read_csv`` (gzip)  ``DataFrame.to_csv`` (gzip)
``.jsonl``    ``pandas.read_json``        ``DataFrame.to_json``
``.parquet``  ``pandas.read_parquet``     ``DataFrame.to_parquet``
============  ==========================  ==========================

A pickle can run code when it is loaded: only load pickles you made or trust (RouterBench ships its
table as one, which is why it is accepted at all). Error messages name the file and the kind of
failure, never the file's content.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable, Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa

from routeyard.predictor.outcome_table import OutcomeTableError

_READERS: dict[str, Callable[[Path], object]] = {
    ".pkl": pd.read_pickle,
    ".csv": lambda path: pd.read_csv(path, keep_default_na=True),
    ".csv.gz": lambda path: pd.read_csv(path, compression="gzip", keep_default_na=True),
    ".jsonl": lambda path: pd.read_json(path, lines=True, dtype=False),
    ".parquet": pd.read_parquet,
}

# What a damaged or mislabelled file raises inside pandas, its compressors and pyarrow.
_UNREADABLE = (
    pd.errors.ParserError,
    UnicodeDecodeError,
    EOFError,
    OSError,
    zlib.error,
    pickle.UnpicklingError,
    pa.ArrowException,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
)


def suffix_of(path: Path) -> str:
    """The format suffix of ``path`` (``.csv.gz`` counts as one), lower-cased."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-2:] == [".csv", ".gz"]:
        return ".csv.gz"
    return suffixes[-1] if suffixes else ""


def read_frame(path: Path, allowed: Collection[str]) -> pd.DataFrame:
    """Read ``path`` into a data frame by its suffix, which must be one of ``allowed``.

    Raises :class:`OutcomeTableError` for an unknown suffix, a missing file, an empty file, a file that
    is not a table of that kind, and a table with no rows.
    """
    suffix = suffix_of(path)
    if suffix not in allowed:
        raise OutcomeTableError(
            f"{path}: unknown file kind {suffix or '(no suffix)'!r}; expected one of {', '.join(allowed)}"
        )
    if not path.is_file():
        raise OutcomeTableError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise OutcomeTableError(f"{path}: the file is empty")
    try:
        frame = _READERS[suffix](path)
    except pd.errors.EmptyDataError as exc:
        raise OutcomeTableError(f"{path}: the file holds no columns") from exc
    except _UNREADABLE as exc:
        raise OutcomeTableError(
            f"{path}: cannot be read as {suffix} ({type(exc).__name__}); is the file damaged or misnamed?"
        ) from exc
    if not isinstance(frame, pd.DataFrame):
        raise OutcomeTableError(f"{path}: holds a {type(frame).__name__}, not a table (pandas DataFrame)")
    if frame.empty:
        raise OutcomeTableError(f"{path}: the table has no rows")
    return frame


def write_frame(frame: pd.DataFrame, path: Path, allowed: Collection[str]) -> None:
    """Write ``frame`` to ``path`` in the kind its suffix names (one of ``allowed``), creating parents.

    Raises :class:`OutcomeTableError` for an unknown suffix.
    """
    suffix = suffix_of(path)
    if suffix not in allowed:
        raise OutcomeTableError(
            f"{path}: unknown file kind {suffix or '(no suffix)'!r}; expected one of {', '.join(allowed)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pkl":
        frame.to_pickle(path)
    elif suffix in (".csv", ".csv.gz"):
        frame.to_csv(path, index=False, compression="gzip" if suffix == ".csv.gz" else None)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False, double_precision=15)
    else:
        frame.to_parquet(path, index=False)
