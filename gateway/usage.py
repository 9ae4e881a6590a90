"""The UsageLog seam: one :class:`RouteRecord` per request, recorded without ever blocking it.

:class:`InMemoryUsageLog` keeps the most recent records in a bounded deque; it is the log when no Redis
is configured (the Redis log of the operations issue implements the same protocol).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Attempt:
    """One call to a backend within a request: which, how it ended, what it cost, and — inside a
    cascade — the judge's score of its answer and the judge's short reason (never answer text)."""

    backend: str
    status: str  # "ok" or the error code
    cost_usd: float = 0.0
    latency_seconds: float = 0.0
    score: float | None = None
    judge_reason: str | None = None


@dataclass(frozen=True)
class RouteRecord:
    """What happened to one request. Holds no prompt text and no key, only a hash of the prompt."""

    request_id: str
    time: float
    router: str | None
    backend: str | None
    status: int
    prompt_sha256: str
    predicted_quality: float | None = None
    cost_usd: float = 0.0
    cost_estimated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    routing_seconds: float = 0.0
    total_seconds: float = 0.0
    streamed: bool = False
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)


class UsageLog(Protocol):
    def record(self, record: RouteRecord) -> None:
        """Keep ``record``; must return at once and never raise."""
        ...


class InMemoryUsageLog:
    """The last ``capacity`` records, oldest dropped first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.records: collections.deque[RouteRecord] = collections.deque(maxlen=capacity)

    def record(self, record: RouteRecord) -> None:
        self.records.append(record)
