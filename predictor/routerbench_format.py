"""RouterBench's wide outcome-table format: one row per prompt, three columns per model.

Columns (architecture.md §7): ``sample_id``, ``prompt``, ``eval_name``, and for every model ``<model>``
(quality), ``<model>|model_response`` and ``<model>|total_cost`` ($), plus RouterBench's derived
``oracle_model_to_route_to``, which is ignored. The models are the columns ending in ``|model_response``
in file order (or, in a file written without responses, those ending in ``|total_cost``). The file may
be ``.pkl`` (RouterBench's own ``routerbench_0shot.pkl`` loads unchanged), ``.csv``, ``.csv.gz`` or
``.parquet``; see :mod:`routeyard.predictor.table_files`.

Repairs, each reported in :attr:`OutcomeTable.repairs` (and so in every replay report):

- a ``sample_id`` that appears more than once keeps the row with the most known qualities (the first
  such row on a tie); the others are dropped. RouterBench's 0-shot table repeats 14 arc-challenge ids,
  the second time with no quality;
- a cell with a quality but no cost is counted as missing quality at $0, like a cell with neither;
- mt-bench judge scores on 0–10 are divided by 10.

Anything else wrong (an absent column, a cell that is not a number, a quality outside [0, 1], a negative
cost, an empty prompt) is an :class:`OutcomeTableError` naming the file, the column and the row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from routeyard.arrays import BoolArray, FloatArray, IndexArray, ObjectArray
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
from routeyard.predictor.table_files import read_frame, write_frame

SUFFIXES = (".pkl", ".csv", ".csv.gz", ".parquet")
RESPONSE = "|model_response"
COST = "|total_cost"


def load_routerbench_table(path: str | Path, *, with_responses: bool = True) -> OutcomeTable:
    """Load a RouterBench wide-format file into an :class:`OutcomeTable`.

    ``with_responses=False`` skips parsing the answer texts (much faster; replay does not need them).
    Raises :class:`OutcomeTableError` for any file that cannot be read as such a table.
    """
    path = Path(path)
    source = str(path)
    frame = read_frame(path, SUFFIXES)
    models = _model_names(frame, source)
    with_responses = with_responses and all(f"{m}{RESPONSE}" in frame.columns for m in models)
    require_columns(frame, ["sample_id", "prompt", "eval_name", *models, *(m + COST for m in models)], source)

    datasets = dataset_names(text_column(frame, "eval_name", source))
    quality = np.column_stack([number_column(frame, m, source) for m in models])
    cost = np.column_stack([number_column(frame, m + COST, source) for m in models])
    quality, repairs = rescale_judge_scores(quality, datasets, source)
    check_unit_interval(quality, models, source)
    check_costs(cost, [m + COST for m in models], source)
    missing, cost, cost_note = _unknown_cells(quality, cost)

    keep, duplicate_note = _rows_to_keep(np.asarray(text_column(frame, "sample_id", source)), missing)
    frame = frame.iloc[keep]
    responses = None
    if with_responses:
        responses = np.column_stack(
            [turns_column(frame, m + RESPONSE, source, allow_empty=True) for m in models]
        )
    return OutcomeTable(
        sample_ids=np.asarray(text_column(frame, "sample_id", source), dtype=np.str_),
        datasets=datasets[keep].astype(np.str_),
        prompts=turns_column(frame, "prompt", source, allow_empty=False),
        models=tuple(models),
        quality=np.where(missing, 0.0, quality)[keep],
        missing=missing[keep],
        cost=cost[keep],
        responses=responses,
        repairs=(*duplicate_note, *cost_note, *repairs),
        source=source,
    )


def write_routerbench_table(table: OutcomeTable, path: str | Path) -> None:
    """Write ``table`` in RouterBench's wide format; the suffix of ``path`` picks the file kind.

    Prompts and responses are written as list literals of turns, missing quality as an empty cell. The
    ``eval_name`` of an mmlu row is recovered from its sample_id (``mmlu-anatomy.test.3`` →
    ``mmlu-anatomy``) when it starts with ``mmlu-``. RouterBench's derived ``oracle_model_to_route_to``
    is not written. Raises :class:`OutcomeTableError` for an unknown suffix.
    """
    columns: dict[str, object] = {
        "sample_id": table.sample_ids.tolist(),
        "prompt": [repr(list(turns)) for turns in table.prompts],
        "eval_name": _eval_names(table),
    }
    quality = np.where(table.missing, np.nan, table.quality)
    for j, model in enumerate(table.models):
        columns[model] = quality[:, j]
    if table.responses is not None:
        for j, model in enumerate(table.models):
            columns[model + RESPONSE] = [None if r is None else repr(list(r)) for r in table.responses[:, j]]
    for j, model in enumerate(table.models):
        columns[model + COST] = table.cost[:, j]
    write_frame(pd.DataFrame(columns), Path(path), SUFFIXES)


def _model_names(frame: pd.DataFrame, source: str) -> list[str]:
    for suffix in (RESPONSE, COST):
        models = [str(c)[: -len(suffix)] for c in frame.columns if str(c).endswith(suffix)]
        if models:
            return models
    raise OutcomeTableError(
        f"{source}: no model columns; RouterBench's format has '<model>{RESPONSE}' and '<model>{COST}' "
        "columns for every model"
    )


def _unknown_cells(quality: FloatArray, cost: FloatArray) -> tuple[BoolArray, FloatArray, tuple[str, ...]]:
    """Missing mask (no quality or no cost), costs with unknowns at $0, a note on graded costless cells."""
    no_cost = np.isnan(cost)
    graded_without_cost = int((no_cost & ~np.isnan(quality)).sum())
    note: tuple[str, ...] = ()
    if graded_without_cost:
        note = (f"{graded_without_cost} cells have a quality but no cost: counted as missing quality at $0",)
    return np.isnan(quality) | no_cost, np.where(no_cost, 0.0, cost), note


def _rows_to_keep(sample_ids: np.ndarray, missing: BoolArray) -> tuple[IndexArray, tuple[str, ...]]:
    """Row indices, ascending, keeping one row per sample_id: the one with most known qualities."""
    known = (~missing).sum(axis=1)
    order = pd.DataFrame({"id": sample_ids, "known": known, "row": np.arange(len(sample_ids))})
    order = order.sort_values(["id", "known", "row"], ascending=[True, False, True], kind="stable")
    keep = np.sort(order.drop_duplicates("id")["row"].to_numpy())
    dropped = len(sample_ids) - len(keep)
    if not dropped:
        return keep, ()
    rows = np.setdiff1d(np.arange(len(sample_ids)), keep)[:5] + 1
    shown = ", ".join(map(str, rows)) + (", …" if dropped > len(rows) else "")
    return keep, (
        f"{dropped} rows repeat a sample_id: kept the row with most known qualities per sample_id, "
        f"dropped rows {shown}",
    )


def _eval_names(table: OutcomeTable) -> list[str]:
    names: ObjectArray = table.datasets.astype(object)
    for i in np.flatnonzero(table.datasets == "mmlu"):
        prefix = str(table.sample_ids[i]).split(".", 1)[0]
        if prefix.startswith("mmlu-"):
            names[i] = prefix
    return [str(name) for name in names]
