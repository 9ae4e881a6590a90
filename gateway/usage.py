"""The UsageLog seam: one :class:`RouteRecord` per request, recorded without ever blocking it.

:class:`InMemoryUsageLog` keeps the most recent records in a bounded deque; it is the log when no Redis
is configured. ``routeyard.gateway.redis_usage_log`` writes them to Redis through a bounded buffer.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger("routeyard.usage")

DIRECT_ROUTER = "direct"
"""The router name shown for a request no router decided (``RouteRecord.router is None``: it named a
backend, or was refused before routing) in the metrics, ``/v1/stats`` and the exported table."""


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
    """What happened to one request. Holds no key, and no prompt text unless the operator opted in
    (``store_prompts``): by default only a hash of the prompt."""

    request_id: str
    time: float
    router: str | None  # None when no router decided (shown as DIRECT_ROUTER)
    backend: str | None  # None when no backend answered
    status: int
    prompt_sha256: str
    predicted_quality: float | None = None
    cost_usd: float = 0.0
    cost_estimated: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    routing_seconds: float = 0.0
    total_seconds: float = 0.0
    streamed: bool = False  # the client asked for a stream
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
    client: str | None = None  # an id of the client's key (a hash prefix), never the key
    first_token_seconds: float | None = None  # streams: until the first chunk was ready
    judge_score: float | None = None  # cascades: the kept answer's score
    dearest_predicted_cost_usd: float | None = None  # routed requests: the costliest candidate's prediction
    prompt_turns: tuple[str, ...] | None = None  # only when the config opts in to storing prompt text
    cache: str | None = None  # answered from the response cache: how it matched (exact, semantic)
    affinity: bool = False  # session affinity chose the backend (routeyard.gateway.session_affinity)


@dataclass(frozen=True)
class ExplorationRecord:
    """One graded answer of an explored request (``routeyard.gateway.exploration``): the answer the
    client got (``chosen``, propensity 1) or the one another candidate gave off the request's path (its
    ``propensity``: the chance it was the one asked). The two share ``request_id``; ``candidates`` are
    the backends the router could have chosen. ``quality`` is the router's grader's score (None when the
    grading failed); ``cost_usd`` the answer's $ and ``grading_cost_usd`` what grading it cost. Prompt
    and answer text only when the operator opted in (``store_prompts``)."""

    request_id: str
    time: float
    router: str
    backend: str
    chosen: bool
    propensity: float
    candidates: tuple[str, ...]
    quality: float | None
    cost_usd: float
    grading_cost_usd: float
    prompt_sha256: str
    prompt_turns: tuple[str, ...] | None = None
    response: str | None = None


class UsageLog(Protocol):
    """Where requests, their quality feedback and explored answers go. Every method returns at once and
    never raises."""

    def record(self, record: RouteRecord) -> None:
        """Keep ``record``."""
        ...

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        """Keep a quality in [0, 1] reported for request ``request_id`` by ``rater`` (the id of the key that
        rated it, ``admin``, or None without keys)."""
        ...

    def explored(self, record: ExplorationRecord) -> None:
        """Keep one graded answer of an explored request."""
        ...


class InMemoryUsageLog:
    """The last ``capacity`` records and feedbacks, oldest dropped first."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.records: collections.deque[RouteRecord] = collections.deque(maxlen=capacity)
        self.feedbacks: collections.OrderedDict[str, float] = collections.OrderedDict()
        self.raters: dict[str, str | None] = {}  # request id -> who gave its feedback
        self.explorations: collections.deque[ExplorationRecord] = collections.deque(maxlen=capacity)
        self.capacity = capacity

    def record(self, record: RouteRecord) -> None:
        self.records.append(record)

    def explored(self, record: ExplorationRecord) -> None:
        self.explorations.append(record)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        self.feedbacks[request_id] = quality
        self.raters[request_id] = rater
        self.feedbacks.move_to_end(request_id)
        while len(self.feedbacks) > self.capacity:
            dropped, _ = self.feedbacks.popitem(last=False)
            self.raters.pop(dropped, None)


class FanOutUsageLog:
    """Records, feedbacks and explored answers go to every log of ``logs``, in order, each on its own: a
    log that raises is counted in :attr:`failures` and logged (its type and the exception's type, never
    the record), and the logs after it still get the entry. Like every UsageLog, it never raises."""

    def __init__(self, *logs: UsageLog) -> None:
        self.logs = logs
        self.failures = 0  # times a log raised (one per log and entry)

    def record(self, record: RouteRecord) -> None:
        for log in self.logs:
            try:
                log.record(record)
            except Exception as exc:  # one broken sink must neither starve the others nor fail a request
                self._failed(log, "a record", exc)

    def feedback(self, request_id: str, quality: float, rater: str | None = None) -> None:
        for log in self.logs:
            try:
                log.feedback(request_id, quality, rater)
            except Exception as exc:
                self._failed(log, "a feedback", exc)

    def explored(self, record: ExplorationRecord) -> None:
        for log in self.logs:
            try:
                log.explored(record)
            except Exception as exc:
                self._failed(log, "an explored answer", exc)

    def _failed(self, log: UsageLog, what: str, exc: Exception) -> None:
        self.failures += 1
        logger.error("usage log %s failed on %s (%s)", type(log).__name__, what, type(exc).__name__)
