"""User-supplied predictions for replay: a long table of predicted quality and $ cost per prompt × model.

Columns ``sample_id, model, predicted_quality, predicted_cost``; files ``.csv``, ``.jsonl`` or
``.parquet``. Every (sample_id, model) of the replayed table must be present exactly once; rows for
other prompts or models are ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routeyard.evaluation.replayed_routers import Predictions
from routeyard.predictor.outcome_table import OutcomeTable

COLUMNS = ("sample_id", "model", "predicted_quality", "predicted_cost")


class PredictionsError(ValueError):
    """A predictions file cannot be used for the table; the message names file and column."""


def load_predictions(path: Path, table: OutcomeTable) -> Predictions:
    """Read ``path`` and align it to ``table``'s rows and models. Raises :class:`PredictionsError`."""
    frame = _read(path)
    absent = [c for c in COLUMNS if c not in frame.columns]
    if absent:
        raise PredictionsError(f"{path}: missing columns {absent}; need {list(COLUMNS)}")
    frame = frame.astype({"sample_id": str, "model": str})
    if frame.duplicated(["sample_id", "model"]).any():
        raise PredictionsError(f"{path}: a (sample_id, model) pair appears more than once")
    arrays = [_aligned(path, frame, column, table) for column in COLUMNS[2:]]
    return Predictions(quality=arrays[0], cost=arrays[1], name=path.stem)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix not in (".csv", ".jsonl", ".parquet"):
        raise PredictionsError(f"{path}: unsupported extension; use .csv, .jsonl or .parquet")
    try:
        if path.suffix == ".jsonl":
            return pd.read_json(path, lines=True)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise PredictionsError(f"{path}: cannot read predictions ({type(exc).__name__})") from exc


def _aligned(path: Path, frame: pd.DataFrame, column: str, table: OutcomeTable) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise PredictionsError(f"{path}: column {column!r} row {row} is not a number")
    wide = frame.assign(**{column: values}).pivot(index="sample_id", columns="model", values=column)
    aligned = wide.reindex(index=list(table.sample_ids), columns=list(table.models))
    if aligned.isna().to_numpy().any():
        missing = int(aligned.isna().to_numpy().sum())
        raise PredictionsError(f"{path}: {missing} (sample_id, model) pairs of the table have no {column}")
    return aligned.to_numpy(dtype=np.float64)
