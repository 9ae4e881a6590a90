"""Exploration: for a sampled fraction of a router's requests, one other candidate's answer too, graded.

A router that explores carries an :class:`ExplorationPolicy` (its ``exploration`` attribute: the
``fraction`` of requests, the daily budget and the grader; a predictive router's
``exploration:`` config). For a request it decided and a backend answered — whole, or streamed to its
end (the relay gathers the text as it passes, ``routeyard.gateway.stream_relay``); a cascade's or a
plan's walk is not explored — :meth:`Explorer.maybe_explore` draws whether to explore it and, if so,
starts a task and returns at once: the client's reply is already rendered (a stream's last chunk sent)
and the task only runs once the request's coroutine yields. The task:

1. picks ONE other backend uniformly at random among the decision's allowed candidates other than the
   one that answered (k of them in all: propensity 1/(k − 1); nothing when k < 2);
2. checks the router's spend today (UTC) against ``budget_usd_per_day``
   (``routeyard.gateway.exploration_budget``: in memory, or in Redis so replicas share it);
3. calls it with the request's body (whole, even when the client streamed), grades both answers with the
   router's grader, and sends two :class:`~routeyard.gateway.usage.ExplorationRecord` (one
   ``request_id``; the client's answer ``chosen`` with propensity 1) to the recorder; when both gradings
   succeeded, the pair goes to the live AIQ (``LiveAiqStore.observe``); what it spent (the other answer
   and both gradings) is added to the ledger.

A grading *failed* when the judge returned ``failed_judgement``'s verdict (score 0 and not confident):
its quality is logged as None and the request does not count in the live AIQ. Every reason a sampled
request was not explored, and every exception inside the task, is counted in
``routeyard_exploration_skipped_total{router, reason}`` (``one_candidate``, ``in_flight``, ``budget``,
``budget_store_failed``, ``upstream_failed``, ``error``); nothing here delays or fails a client request.
At most ``max_in_flight`` explorations run at once per process (beyond: skipped, ``in_flight``).
Concurrent explorations all pass the budget check before any adds to it, so a day's spend may exceed
the budget by at most what those in flight spend.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import Counter

from routeyard.evaluation.live_aiq import ExploredAnswer
from routeyard.gateway.backends.backend import Backend, Reply
from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.exploration_budget import SpendLedger, utc_day
from routeyard.gateway.router import Decision
from routeyard.gateway.usage import ExplorationRecord, UsageLog
from routeyard.gateway.walk import answer_of
from routeyard.gateway.wire import ChatCompletionRequest
from routeyard.judges.judge import Answer, Judge, Judgement, failed_judgement
from routeyard.predictor.embedder import embedding_text

logger = logging.getLogger("routeyard.gateway")
SHUTDOWN_SECONDS = 2.0
"""How long :meth:`Explorer.close` waits for explorations in flight before cancelling them."""


@dataclass(frozen=True)
class ExplorationPolicy:
    """How a router explores: the ``fraction`` of its answered requests, at most ``budget_usd_per_day`` $
    of exploring spend per UTC day, graded by ``grader``; ``model_of(backend)`` is the grader's name
    for a backend's model (None: the backend's own name)."""

    fraction: float
    budget_usd_per_day: float
    grader: Judge
    model_of: Callable[[str], str | None]


def exploration_of(router: object) -> ExplorationPolicy | None:
    """``router``'s exploration policy when it explores (its ``exploration`` attribute), else None."""
    policy = getattr(router, "exploration", None)
    return policy if isinstance(policy, ExplorationPolicy) and policy.fraction > 0.0 else None


class LiveObserver(Protocol):
    """The live AIQ's store, as exploration feeds it (``LiveAiqStore.observe``)."""

    def observe(
        self, router: str, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer
    ) -> None: ...


def failed_grading(judgement: Judgement) -> bool:
    """Whether ``judgement`` is a grading that went wrong (``judges.judge.failed_judgement``'s verdict:
    score 0, not confident) rather than a low grade."""
    return judgement.score == 0.0 and not judgement.confident


@dataclass(frozen=True)
class _Explored:
    """One request to explore: what the client got and what the router could have chosen."""

    router: str
    policy: ExplorationPolicy
    request: ChatCompletionRequest
    request_id: str
    candidates: tuple[str, ...]
    chosen: str
    chosen_reply: Reply
    other: str
    propensity: float


class Explorer:
    """Explores the requests of every router with an :class:`ExplorationPolicy` (see the module
    docstring). ``backends`` are the gateway's (read when a request is explored), ``recorder`` receives
    the explored answers, ``live`` the graded pairs, ``skips`` (a counter labelled router and reason)
    counts what was not explored."""

    def __init__(
        self,
        backends: dict[str, Backend],
        recorder: UsageLog,
        live: LiveObserver,
        skips: Counter,
        ledger: SpendLedger,
        *,
        store_prompts: bool = False,
        max_in_flight: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.backends = backends
        self.recorder = recorder
        self.live = live
        self.skips = skips
        self.ledger = ledger
        self.store_prompts = store_prompts
        self.max_in_flight = max_in_flight
        self.tasks: set[asyncio.Task[None]] = set()
        self._rng = rng or random.Random()
        self._ledger_failing = False

    def maybe_explore(
        self,
        router: object,
        request: ChatCompletionRequest,
        decision: Decision,
        backend: str,
        reply: Reply,
        request_id: str,
    ) -> None:
        """Explore this answered request of ``router`` (``backend`` gave ``reply``) when the router
        explores and the draw says so; returns at once, never raises."""
        try:
            self._maybe_explore(router, request, decision, backend, reply, request_id)
        except Exception as exc:  # a bug here must not fail the request it would have explored
            self._skip(decision.router, "error")
            logger.error("exploring a request of %s failed (%s)", decision.router, type(exc).__name__)

    def _maybe_explore(
        self,
        router: object,
        request: ChatCompletionRequest,
        decision: Decision,
        backend: str,
        reply: Reply,
        request_id: str,
    ) -> None:
        policy = exploration_of(router)
        if policy is None or not decision.routed or self._rng.random() >= policy.fraction:
            return
        name = decision.router
        candidates = tuple(c.backend for c in decision.candidates if c.allowed)
        others = [b for b in candidates if b != backend and b in self.backends]
        if backend not in candidates or not others:
            self._skip(name, "one_candidate")
            return
        if len(self.tasks) >= self.max_in_flight:
            self._skip(name, "in_flight")
            return
        other = others[self._rng.randrange(len(others))]
        explored = _Explored(
            name, policy, request, request_id, candidates, backend, reply, other, 1.0 / len(others)
        )
        task = asyncio.get_running_loop().create_task(self._explore(explored))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Wait up to ``timeout`` s for the explorations in flight, cancel the rest, close the ledger."""
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.ledger.close()

    async def _explore(self, explored: _Explored) -> None:
        try:
            await self._explore_within_budget(explored)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # exploring must never surface: counted, logged without data
            self._skip(explored.router, "error")
            logger.error("exploring a request of %s failed (%s)", explored.router, type(exc).__name__)

    async def _explore_within_budget(self, explored: _Explored) -> None:
        router, day = explored.router, utc_day(time.time())
        try:
            spent = await self.ledger.spent(router, day)
        except Exception as exc:
            self._ledger_failed(router, exc)
            return
        self._ledger_failing = False
        if spent >= explored.policy.budget_usd_per_day:
            self._skip(router, "budget")
            return
        try:
            other_reply = await self.backends[explored.other].complete(_whole_body(explored))
        except UpstreamError:
            self._skip(router, "upstream_failed")
            return
        cost = await self._grade_and_record(explored, other_reply)
        try:
            await self.ledger.add(router, day, cost)
        except Exception as exc:
            self._ledger_failed(router, exc)

    def _ledger_failed(self, router: str, exc: Exception) -> None:
        """Count a failure of the budget's store (``budget_store_failed``), logged once until it answers
        again."""
        self._skip(router, "budget_store_failed")
        if not self._ledger_failing:
            logger.error("the exploration budget's store failed (%s); not exploring", type(exc).__name__)
        self._ledger_failing = True

    async def _grade_and_record(self, explored: _Explored, other_reply: Reply) -> float:
        """Grade both answers, record them (and the pair in the live AIQ when both gradings succeeded);
        returns what exploring spent: the other answer and both gradings."""
        policy = explored.policy
        turns = explored.request.prompt_turns()
        prompt = embedding_text(turns)
        answers = (
            answer_of(explored.chosen_reply, policy.model_of(explored.chosen) or explored.chosen),
            answer_of(other_reply, policy.model_of(explored.other) or explored.other),
        )
        judgements = await asyncio.gather(*(_grade(policy.grader, prompt, a) for a in answers))
        sha256 = hashlib.sha256(prompt.encode()).hexdigest()
        now = time.time()
        replies = (explored.chosen_reply, other_reply)
        records = [
            ExplorationRecord(
                request_id=explored.request_id,
                time=now,
                router=explored.router,
                backend=backend,
                chosen=is_chosen,
                propensity=1.0 if is_chosen else explored.propensity,
                candidates=explored.candidates,
                quality=None if failed_grading(judgement) else judgement.score,
                cost_usd=reply.cost_usd,
                grading_cost_usd=judgement.cost_usd,
                prompt_sha256=sha256,
                prompt_turns=turns if self.store_prompts else None,
                response=answer.text if self.store_prompts else None,
            )
            for backend, is_chosen, reply, judgement, answer in zip(
                (explored.chosen, explored.other), (True, False), replies, judgements, answers, strict=True
            )
        ]
        for record in records:
            self.recorder.explored(record)
        chosen, other = records
        if chosen.quality is not None and other.quality is not None:
            self.live.observe(
                explored.router,
                explored.candidates,
                ExploredAnswer(chosen.backend, chosen.quality, chosen.cost_usd, 1.0),
                ExploredAnswer(other.backend, other.quality, other.cost_usd, other.propensity),
            )
        spent = other_reply.cost_usd + sum(j.cost_usd for j in judgements)
        return spent if math.isfinite(spent) else 0.0

    def _skip(self, router: str, reason: str) -> None:
        self.skips.labels(router, reason).inc()


async def _grade(grader: Judge, prompt: str, answer: Answer) -> Judgement:
    """``grader``'s judgement, a failed one when it raised (the contract says judges never do)."""
    try:
        return await grader.judge(prompt, answer)
    except Exception as exc:
        return failed_judgement(f"judge {grader.name} failed ({type(exc).__name__})")


def _whole_body(explored: _Explored) -> dict[str, Any]:
    """The request's body for the other candidate, asked whole even when the client streamed."""
    body = explored.request.upstream_body(explored.other)
    body.pop("stream", None)
    body.pop("stream_options", None)
    return body
