"""What one request did, gathered as it goes, and its record in the usage log.

A :class:`RequestTrace` collects every call to a backend (:class:`gateway.usage.Attempt`) and every
upstream error; :func:`log_request` turns it into the request's one :class:`gateway.usage.RouteRecord`
(a hash of the prompt, never its text) and a log line without prompt text; :func:`log_refusal` records a
request refused before routing.

The trace also keeps the request's clock of upstream waiting (:meth:`RequestTrace.upstream`), from which
:meth:`RequestTrace.overhead_seconds` gives the gateway's own time (``routeyard.gateway.explanation``
defines it).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from routeyard.gateway.backends.backend import Reply, Usage
from routeyard.gateway.errors import BackendUnavailableError, UpstreamError
from routeyard.gateway.keys.key_enforcement import KeyHold
from routeyard.gateway.router import Decision, PacedRouter
from routeyard.gateway.usage import Attempt, RouteRecord, UsageLog
from routeyard.gateway.wire import ChatCompletionRequest
from routeyard.predictor.embedder import embedding_text

logger = logging.getLogger("routeyard.gateway")
T = TypeVar("T")


@dataclass
class RequestTrace:
    """The attempts and errors of request ``request_id``, begun at ``started`` (``time.perf_counter``),
    from the client with key id ``client``; ``keep_prompt`` when the prompt text may be logged."""

    request_id: str
    started: float
    client: str | None = None
    keep_prompt: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    errors: list[UpstreamError] = field(default_factory=list)
    first_token_seconds: float | None = None
    key_hold: KeyHold | None = None  # the virtual key's reservation, until the request is logged
    paced_router: PacedRouter | None = None  # the paced router that decided it, told its $ when logged
    logged: bool = False  # its record was written (log_request)
    upstream_seconds: float = 0.0  # wall time with at least one upstream call in flight (see upstream)
    excluded: dict[str, str] = field(default_factory=dict)  # backends it could not use, and why
    cache: dict[str, Any] | None = None  # the routing.cache object, when the cache was asked
    affinity: dict[str, Any] | None = None  # the routing.affinity object, when the request has a session
    # told the answer kept and its backend once it is whole (the response cache, session affinity)
    on_answer: list[Callable[[str, Reply], None]] = field(default_factory=list)
    _in_flight: int = field(default=0, repr=False)
    _waiting_since: float = field(default=0.0, repr=False)

    async def upstream(self, call: Awaitable[T]) -> T:
        """``call`` (an upstream call: a whole completion, or a stream up to its first chunk) awaited,
        its wall time added to ``upstream_seconds``, also when it fails or is cancelled. Calls in flight
        together count once: what is added is the time during which at least one was."""
        if self._in_flight == 0:
            self._waiting_since = time.perf_counter()
        self._in_flight += 1
        try:
            return await call
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.upstream_seconds += time.perf_counter() - self._waiting_since

    def overhead_seconds(self, now: float) -> float:
        """The gateway's own time from ``started`` to ``now`` (``time.perf_counter``): the wall time less
        ``upstream_seconds`` (never below 0; see ``routeyard.gateway.explanation``)."""
        return max(now - self.started - self.upstream_seconds, 0.0)

    def answered(
        self,
        backend: str,
        cost_usd: float,
        seconds: float,
        score: float | None = None,
        judge_reason: str | None = None,
    ) -> None:
        """Note a call to ``backend`` that answered after ``seconds`` for ``cost_usd`` $ (inside a
        cascade, with the judge's ``score`` and short reason)."""
        self.attempts.append(Attempt(backend, "ok", cost_usd, seconds, score, judge_reason))

    def graded(self, grader: str, cost_usd: float, seconds: float) -> None:
        """Note a paid grading of a walk's answer by ``grader`` (status ``judge``): an upstream call, so its
        ``seconds`` (a walk judges between its calls, never during one) count as upstream waiting."""
        self.attempts.append(Attempt(grader, "judge", cost_usd, seconds))
        self.upstream_seconds += seconds

    def answer_kept(self, backend: str, reply: Reply) -> None:
        """The request is answered with ``backend``'s ``reply`` (a walk's at its whole cost): tell whoever
        asked (:attr:`on_answer`)."""
        for told in self.on_answer:
            told(backend, reply)

    def failed(self, backend: str, error: UpstreamError, seconds: float) -> None:
        """Note a call to ``backend`` that failed with ``error`` after ``seconds``."""
        self.attempts.append(Attempt(backend, error.code or "upstream_error", 0.0, seconds))
        self.errors.append(error)
        logger.warning("request %s: backend %s failed (%s)", self.request_id, backend, error.code)

    def abandoned(self, backend: str, seconds: float) -> None:
        """Note a call to ``backend`` whose client went away after ``seconds`` (status ``client_closed``;
        what the upstream billed is unknown, so it costs 0 here)."""
        self.attempts.append(Attempt(backend, "client_closed", 0.0, seconds))

    def settle_key(self, usage: Usage | None) -> None:
        """Settle the key's reservation, if one is held, at this request's $ and ``usage`` (once)."""
        if self.key_hold is not None:
            self.key_hold.settle(self.cost_usd, usage)
            self.key_hold = None

    @property
    def cost_usd(self) -> float:
        """The $ of every call made so far."""
        return sum(a.cost_usd for a in self.attempts)

    def exhausted(self) -> UpstreamError:
        """The error for a request no candidate could answer: the one failure itself, or all of them."""
        if len(self.errors) == 1:
            return self.errors[0]
        return BackendUnavailableError(
            "no backend could answer: " + "; ".join(e.message for e in self.errors)
        )


def log_request(
    usage_log: UsageLog,
    request: ChatCompletionRequest,
    decision: Decision,
    trace: RequestTrace,
    *,
    status: int,
    backend: str | None = None,
    usage: Usage | None = None,
    route: str | None = None,
) -> None:
    """Record the request — answered by ``backend`` with ``usage``, or not (None) — in ``usage_log``
    with HTTP ``status`` (never blocks), settle its key's reservation, tell its paced router (if any)
    what it cost, and log one line about it. The predicted quality recorded is the candidate
    ``route``'s when given (a plan router's plan), else the answering backend's."""
    trace.logged = True
    trace.settle_key(usage)  # the key pays what the request cost (its reservation's tokens if no usage)
    if trace.paced_router is not None:
        trace.paced_router.observe_spend(trace.cost_usd)
    chosen_name = route or backend
    chosen = decision.candidate(chosen_name) if chosen_name else None
    costs = [c.predicted_cost_usd for c in decision.candidates if c.predicted_cost_usd is not None]
    usage = usage or Usage(0, 0, estimated=True)
    elapsed = time.perf_counter() - trace.started
    record = RouteRecord(
        request_id=trace.request_id,
        time=time.time(),
        router=decision.router if decision.routed else None,
        backend=backend,
        status=status,
        prompt_sha256=hashlib.sha256(embedding_text(request.prompt_turns()).encode()).hexdigest(),
        predicted_quality=chosen.predicted_quality if chosen else None,
        cost_usd=trace.cost_usd,
        cost_estimated=usage.estimated,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        routing_seconds=decision.routing_seconds,
        total_seconds=elapsed,
        streamed=request.stream,
        attempts=tuple(trace.attempts),
        client=trace.client,
        first_token_seconds=trace.first_token_seconds,
        judge_score=next(
            (a.score for a in trace.attempts if a.backend == backend and a.score is not None), None
        ),
        dearest_predicted_cost_usd=max(costs) if costs else None,
        prompt_turns=request.prompt_turns() if trace.keep_prompt else None,
        cache=trace.cache["match"] if trace.cache and trace.cache["hit"] else None,
        affinity=bool(trace.affinity and trace.affinity["decided"]),
    )
    usage_log.record(record)
    logger.debug(  # one line per request costs ≈ 5 % of a passthrough's CPU: debug, not info
        "request %s router=%s backend=%s status=%d %.1f ms",
        trace.request_id,
        record.router,
        backend,
        status,
        elapsed * 1000.0,
    )


def log_refusal(usage_log: UsageLog, trace: RequestTrace, status: int) -> None:
    """Record a request refused before any backend was called (bad input, a wrong key, a router still
    loading) with HTTP ``status``: no router, no backend, no prompt hash."""
    trace.logged = True
    elapsed = time.perf_counter() - trace.started
    usage_log.record(
        RouteRecord(
            request_id=trace.request_id,
            time=time.time(),
            router=None,
            backend=None,
            status=status,
            prompt_sha256="",
            total_seconds=elapsed,
            client=trace.client,
        )
    )
    logger.debug("request %s refused: status=%d %.1f ms", trace.request_id, status, elapsed * 1000.0)
