"""From the Redis usage log back to training data: logged requests with quality feedback, as a table.

:func:`feedback_table` reads the request stream (``<prefix>:requests``) and the feedback hash
(``<prefix>:feedback``) that :mod:`gateway.redis_usage_log` writes, and keeps each answered request
(status 200) that has both a feedback and its prompt text (the gateway stores prompt text only with
``store_prompts: true``). Each becomes one prompt of an :class:`OutcomeTable`: sample_id = request id,
dataset = its router (``direct`` when it named a backend), quality known only for the backend that
answered, cost = what the request cost. ``predictor.long_format.write_long_table`` writes it for
``routeyard train --format long``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from predictor.outcome_table import OutcomeTable

_PAGE = 1000


@dataclass(frozen=True)
class ExportedTable:
    """The table, and how many logged requests were left out for want of feedback or prompt text."""

    table: OutcomeTable
    requests_seen: int
    without_feedback: int
    without_prompt: int


def feedback_table(client: redis.Redis, prefix: str = "routeyard") -> ExportedTable:
    """The answered, rated requests of the log as a table (see the module docstring); ``client`` must
    decode responses (``decode_responses=True``)."""
    raw_feedback: Any = client.hgetall(f"{prefix}:feedback")
    feedback = {str(k): float(v) for k, v in raw_feedback.items()}
    kept: list[dict[str, str]] = []
    seen = without_feedback = without_prompt = 0
    for fields in _stream(client, f"{prefix}:requests"):
        if fields.get("status") != "200" or "backend" not in fields:
            continue
        seen += 1
        if fields["request_id"] not in feedback:
            without_feedback += 1
        elif "prompt_turns" not in fields:
            without_prompt += 1
        else:
            kept.append(fields)
    return ExportedTable(_table(kept, feedback, prefix), seen, without_feedback, without_prompt)


def _stream(client: redis.Redis, key: str) -> Iterator[dict[str, str]]:
    """Every entry of the stream, oldest first, as decoded fields, a page at a time."""
    start = "-"
    while True:
        page: Any = client.xrange(key, min=start, max="+", count=_PAGE)
        for _entry_id, fields in page:
            yield {str(k): str(v) for k, v in fields.items()}
        if len(page) < _PAGE:
            return
        start = "(" + str(page[-1][0])


def _table(kept: list[dict[str, str]], feedback: dict[str, float], source: str) -> OutcomeTable:
    models = tuple(sorted({f["backend"] for f in kept}))
    n, m = len(kept), len(models)
    quality, cost = np.zeros((n, m)), np.zeros((n, m))
    missing = np.ones((n, m), dtype=bool)
    prompts = np.empty(n, dtype=object)
    for i, fields in enumerate(kept):
        j = models.index(fields["backend"])
        quality[i, j], cost[i, j], missing[i, j] = (
            feedback[fields["request_id"]],
            float(fields["cost_usd"]),
            False,
        )
        prompts[i] = tuple(json.loads(fields["prompt_turns"]))
    return OutcomeTable(
        sample_ids=np.array([f["request_id"] for f in kept], dtype=str),
        datasets=np.array([f.get("router", "direct") for f in kept], dtype=str),
        prompts=prompts,
        models=models,
        quality=quality,
        missing=missing,
        cost=cost,
        source=f"redis usage log {source}",
    )
