"""From the Redis usage log back to training data: logged requests with quality feedback, as a table.

:func:`feedback_table` reads the request stream (``<prefix>:requests``) and the feedback stream
(``<prefix>:feedbacks``, capped like the requests; a ``<prefix>:feedback`` hash written by older
versions is read too, the stream winning) that :mod:`routeyard.gateway.redis_usage_log` writes, and keeps each
answered request (status 200) that has both a feedback (the last one given for it) and its prompt text
(the gateway stores prompt text only with ``store_prompts: true``). Each becomes one prompt of an
:class:`OutcomeTable`: sample_id = request id, dataset = its router (``direct``, the
:data:`routeyard.gateway.usage.DIRECT_ROUTER`, when it named a backend), quality known only for the
backend that answered, cost = what *that backend's* answer cost (the last ``ok`` attempt of it: a
cascade's earlier calls were other models' costs, so the request's total would teach the predictor a
wrong price). ``routeyard.predictor.long_format.write_long_table`` writes it
for ``routeyard train --format long``.

The log is taken as it is: a request id logged twice keeps its first record (the others are counted
in :attr:`ExportedTable.duplicates`), and a record or feedback that cannot be read is skipped and
counted in :attr:`ExportedTable.damaged`. Redis failing is a :class:`UsageExportError` (a ValueError);
no message carries a URL's password (see :func:`redacted`).
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from routeyard.gateway.usage import DIRECT_ROUTER
from routeyard.predictor.outcome_table import OutcomeTable

_PAGE = 1000
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


class UsageExportError(ValueError):
    """The usage log cannot be read (Redis unreachable, refusing, or holding a key of another type);
    :attr:`reason` is Redis's error, its type and message (credentials redacted)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot read the usage log: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class ExportedTable:
    """The table (None when no request could be exported), and how many logged requests were left out
    and why.

    Attributes:
        requests_seen: answered requests in the log (each request id once).
        without_feedback, without_prompt: answered requests left out for want of either.
        duplicates: records skipped because their request id was logged before (the first is kept).
        damaged: records and feedbacks skipped because a field could not be read.
    """

    table: OutcomeTable | None  # None when no request could be exported
    requests_seen: int
    without_feedback: int
    without_prompt: int
    duplicates: int = 0
    damaged: int = 0


@dataclass(frozen=True)
class _Answer:
    request_id: str
    dataset: str
    backend: str
    cost_usd: float
    prompt: tuple[str, ...]


def feedback_table(client: redis.Redis, prefix: str = "routeyard") -> ExportedTable:
    """The answered, rated requests of the log as a table (see the module docstring); ``client`` must
    decode responses (``decode_responses=True``). Raises :class:`UsageExportError`."""
    feedback, damaged = _feedback(client, prefix)
    kept: list[_Answer] = []
    logged: set[str] = set()
    duplicates = without_feedback = without_prompt = 0
    for fields in read_stream(client, f"{prefix}:requests"):
        if fields.get("status") != "200" or "backend" not in fields:
            continue
        request_id = fields.get("request_id", "")
        if request_id in logged:
            duplicates += 1
            continue
        logged.add(request_id)
        if request_id not in feedback:
            without_feedback += 1
        elif "prompt_turns" not in fields:
            without_prompt += 1
        elif (answer := _answer(fields)) is None:
            damaged += 1
        else:
            kept.append(answer)
    seen = len(logged)
    table = _table(kept, feedback, prefix) if kept else None
    return ExportedTable(table, seen, without_feedback, without_prompt, duplicates, damaged)


def redacted(text: str, url: str | None = None) -> str:
    """``text`` with the credentials of every URL in it (``redis://user:secret@host``) and, wherever it
    appears, ``url``'s password replaced by ``***``."""
    text = _USERINFO.sub("***@", text)
    password = urllib.parse.urlsplit(url).password if url else None
    for secret in {password, urllib.parse.unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def _feedback(client: redis.Redis, prefix: str) -> tuple[dict[str, float], int]:
    """Every request id's last quality, and how many feedbacks could not be read."""
    raw: list[tuple[str, str]] = []
    legacy = f"{prefix}:feedback"
    if _read(client.type, legacy) == "hash":
        raw += list(_read(client.hgetall, legacy).items())
    raw += [
        (f.get("request_id", ""), f.get("quality", "")) for f in read_stream(client, f"{prefix}:feedbacks")
    ]
    feedback: dict[str, float] = {}
    damaged = 0
    for request_id, text in raw:
        try:
            quality = float(text)
        except ValueError:
            quality = math.nan
        if not (request_id and 0.0 <= quality <= 1.0):
            damaged += 1
            continue
        feedback[str(request_id)] = quality
    return feedback, damaged


def _answer(fields: dict[str, str]) -> _Answer | None:
    """The exported facts of one rated record with its prompt, or None when a field cannot be read."""
    backend = fields["backend"]
    try:
        attempts = json.loads(fields.get("attempts", "[]"))
        ok = [a for a in attempts if a.get("backend") == backend and a.get("status") == "ok"]
        cost = float(ok[-1]["cost_usd"] if ok else fields["cost_usd"])
        turns = json.loads(fields["prompt_turns"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (math.isfinite(cost) and cost >= 0.0) or not isinstance(turns, list) or not turns:
        return None
    dataset = fields.get("router", DIRECT_ROUTER)
    return _Answer(fields["request_id"], dataset, backend, cost, tuple(str(t) for t in turns))


def read_stream(client: redis.Redis, key: str) -> Iterator[dict[str, str]]:
    """Every entry of the stream, oldest first, as decoded fields, a page at a time."""
    start = "-"
    while True:
        page: Any = _read(client.xrange, key, min=start, max="+", count=_PAGE)
        for _entry_id, fields in page:
            yield {str(k): str(v) for k, v in fields.items()}
        if len(page) < _PAGE:
            return
        start = "(" + str(page[-1][0])


def _read(command: Any, *args: Any, **kwargs: Any) -> Any:
    """``command(*args, **kwargs)``, with Redis's errors translated into :class:`UsageExportError`."""
    try:
        return command(*args, **kwargs)
    except redis.RedisError as exc:
        raise UsageExportError(f"{type(exc).__name__}: {redacted(str(exc))}") from exc


def _table(kept: list[_Answer], feedback: dict[str, float], source: str) -> OutcomeTable:
    models = tuple(sorted({a.backend for a in kept}))
    n, m = len(kept), len(models)
    quality, cost = np.zeros((n, m)), np.zeros((n, m))
    missing = np.ones((n, m), dtype=bool)
    prompts = np.empty(n, dtype=object)
    for i, answer in enumerate(kept):
        j = models.index(answer.backend)
        quality[i, j], cost[i, j], missing[i, j] = feedback[answer.request_id], answer.cost_usd, False
        prompts[i] = answer.prompt
    return OutcomeTable(
        sample_ids=np.array([a.request_id for a in kept], dtype=str),
        datasets=np.array([a.dataset for a in kept], dtype=str),
        prompts=prompts,
        models=models,
        quality=quality,
        missing=missing,
        cost=cost,
        source=f"redis usage log {source}",
    )
