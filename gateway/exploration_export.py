"""From the usage log's explored answers to a long outcome table: what a router did not choose, for ``train``.

:func:`explored_frame` reads ``<prefix>:explored`` (``routeyard.gateway.redis_usage_log``), where every
explored request left two graded answers under one request id: the client's (``chosen``) and another
candidate's. Each answer is one row of the long format (``routeyard.predictor.long_format``):
``sample_id`` (the request id), ``dataset`` (the router), ``prompt``, ``model`` (the backend),
``quality`` (the grader's score; empty when grading failed, so missing, never 0), ``cost`` (the
answer's $) and ``response``; plus ``chosen`` (1 or 0), ``propensity`` and ``candidates`` (a JSON list),
which ``train`` ignores and the live AIQ reads (``routeyard replay --live``). A request is exported only
with both its answers and its prompt text (kept with ``store_prompts: true``); the others are counted.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import redis

from routeyard.gateway.usage_export import read_stream
from routeyard.predictor.long_format import SUFFIXES
from routeyard.predictor.table_files import suffix_of, write_frame

COLUMNS = ("sample_id", "dataset", "prompt", "model", "quality", "cost", "response")
EXTRA_COLUMNS = ("chosen", "propensity", "candidates")


@dataclass(frozen=True)
class ExploredExport:
    """The rows (None when no request could be exported) and how many explored requests were left out:
    ``incomplete`` (not both answers logged yet, or the stream's cap dropped one), ``without_prompt``
    and ``damaged`` (a field that cannot be read)."""

    frame: pd.DataFrame | None
    requests_seen: int
    incomplete: int
    without_prompt: int
    damaged: int


def explored_frame(client: redis.Redis, prefix: str = "routeyard") -> ExploredExport:
    """The explored answers of the log as long rows (see the module docstring); ``client`` must decode
    responses. Raises ``routeyard.gateway.usage_export.UsageExportError`` when Redis fails."""
    by_request: dict[str, list[dict[str, str]]] = defaultdict(list)
    for fields in read_stream(client, f"{prefix}:explored"):
        by_request[fields.get("request_id", "")].append(fields)
    rows: list[dict[str, object]] = []
    incomplete = without_prompt = damaged = 0
    for answers in by_request.values():
        if sorted(a.get("chosen", "") for a in answers) != ["0", "1"]:
            incomplete += 1
        elif not all("prompt_turns" in a for a in answers):
            without_prompt += 1
        elif (pair := [_row(a) for a in answers]) and all(r is not None for r in pair):
            rows += [r for r in pair if r is not None]
        else:
            damaged += 1
    frame = pd.DataFrame(rows, columns=[*COLUMNS, *EXTRA_COLUMNS]) if rows else None
    return ExploredExport(frame, len(by_request), incomplete, without_prompt, damaged)


def write_explored(frame: pd.DataFrame, path: Path) -> None:
    """Write :func:`explored_frame`'s rows to ``path`` (a long table's suffix): turn lists as real lists,
    or as list literals in CSV, as ``routeyard.predictor.long_format`` reads them. Raises
    ``OutcomeTableError`` for an unknown suffix."""
    if suffix_of(path) in (".csv", ".csv.gz"):
        frame = frame.assign(
            **{c: frame[c].map(lambda v: None if v is None else repr(v)) for c in ("prompt", "response")}
        )
    write_frame(frame, path, SUFFIXES)


def _row(fields: dict[str, str]) -> dict[str, object] | None:
    """One answer as a long row, or None when a field cannot be read."""
    try:
        quality = float(fields["quality"]) if "quality" in fields else math.nan
        cost, propensity = float(fields["cost_usd"]), float(fields["propensity"])
        turns, candidates = json.loads(fields["prompt_turns"]), json.loads(fields["candidates"])
    except (KeyError, ValueError, TypeError):
        return None
    if not (math.isfinite(cost) and cost >= 0.0 and 0.0 < propensity <= 1.0) or not isinstance(turns, list):
        return None
    if not (math.isnan(quality) or 0.0 <= quality <= 1.0) or not isinstance(candidates, list):
        return None
    response = fields.get("response")
    return {
        "sample_id": fields["request_id"],
        "dataset": fields.get("router", ""),
        "prompt": [str(t) for t in turns],
        "model": fields.get("backend", ""),
        "quality": quality,
        "cost": cost,
        "response": None if response is None else [response],
        "chosen": 1 if fields.get("chosen") == "1" else 0,
        "propensity": propensity,
        "candidates": json.dumps([str(c) for c in candidates]),
    }
