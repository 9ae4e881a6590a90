"""The cascade router: cheap backends first, escalating while a judge rejects the answer.

**Plan** (:meth:`CascadeRouter.decide`): a predictor (the same artifact kinds as the predictive routers)
predicts every backend's quality and $ cost for the prompt; the allowed backends are ordered by
ascending predicted cost (``routeyard.policy.cascade.cascade_order``), or by the configured order.

**Walk** (:meth:`CascadeRouter.walk`): call the first; the judge scores its answer; call the next only
while ``routeyard.policy.cascade.should_escalate`` says so — the answer was rejected (score below the
threshold) and the next call's predicted cost fits what is left of the budget. That is the rule the
replay harness scores. A backend that fails moves the walk on to the next candidate (a failed call
costs nothing and is never the kept answer; until one answers, the budget does not stop the walk). A
backend that *rejects the request* (an upstream 4xx but 401/403/404/408/429) ends the walk: the request
is at fault, not the backend; an answer received before is still kept (:attr:`CascadeWalk.rejection`
is the 4xx otherwise). The answer kept is the last one received; the cost is the sum of every call,
the judge's gradings included (an LLM judge pays for each). A step's ``seconds`` is the backend call
alone, ``judge_seconds`` the judging.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from routeyard.gateway.backends.backend import Reply
from routeyard.gateway.errors import NoBackendFitsError, UpstreamError, UpstreamRejectedError
from routeyard.gateway.router import Decision, PredictiveRouter
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.judge import Answer, Judge, Judgement, failed_judgement
from routeyard.policy.cascade import cascade_order, should_escalate


@dataclass(frozen=True)
class Step:
    """One call of a walk: the backend, its reply and the judge's verdict, or the error it failed with."""

    backend: str
    seconds: float
    reply: Reply | None = None
    judgement: Judgement | None = None
    error: UpstreamError | None = None
    judge_seconds: float = 0.0

    @property
    def cost_usd(self) -> float:
        """The $ of the call and of judging its answer."""
        answer = self.reply.cost_usd if self.reply is not None else 0.0
        return answer + (self.judgement.cost_usd if self.judgement is not None else 0.0)


@dataclass(frozen=True)
class CascadeWalk:
    """Every step of a walk, in order; whether the kept answer was accepted; the budget it ran under."""

    steps: tuple[Step, ...]
    accepted: bool
    budget_usd: float

    @property
    def kept(self) -> Step | None:
        """The last step that got a reply (the answer returned), or None when every call failed."""
        return next((s for s in reversed(self.steps) if s.reply is not None), None)

    @property
    def cost_usd(self) -> float:
        """The $ of every call and every grading."""
        return sum(s.cost_usd for s in self.steps)

    @property
    def rejection(self) -> UpstreamRejectedError | None:
        """The upstream 4xx that ended the walk, if one did."""
        last = self.steps[-1].error if self.steps else None
        return last if isinstance(last, UpstreamRejectedError) else None


class CascadeRouter:
    """A cascade over the backends a predictor knows (see the module docstring).

    Args:
        name: the router's name clients select.
        predictor_router: predicts quality and cost for the plan (its willingness to pay is unused).
        judge: scores each answer.
        threshold: accept an answer when its score ≥ threshold.
        budget_usd: $ per request; a request's ``routing.max_cost_usd`` lowers it.
        order: backends in the order to try them (only those listed); empty: ascending predicted cost.
    """

    def __init__(
        self,
        name: str,
        predictor_router: PredictiveRouter,
        judge: Judge,
        *,
        threshold: float = 0.5,
        budget_usd: float = math.inf,
        order: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.judge = judge
        self.threshold = threshold
        self.budget_usd = budget_usd
        self.order = order
        self._predictor_router = predictor_router

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """The plan: allowed backends in the order the walk tries them."""
        assessment = await self._predictor_router.assess(turns, options, available)
        backends = self._predictor_router.backends
        allowed = {b for b, ok in zip(backends, assessment.allowed, strict=True) if ok}
        if self.order:
            ranked = tuple(b for b in self.order if b in allowed)
        else:
            ranked = tuple(backends[j] for j in cascade_order(assessment.cost) if backends[j] in allowed)
        if not ranked:
            raise NoBackendFitsError(
                f"router {self.name}: no backend of its order is allowed under the request's routing options",
                param="routing",
            )
        return Decision(self.name, None, ranked, assessment.candidates, assessment.seconds)

    def budget_for(self, options: RoutingOptions) -> float:
        """The request's budget: the router's, lowered by ``routing.max_cost_usd``."""
        return min(self.budget_usd, options.max_cost_usd if options.max_cost_usd is not None else math.inf)

    async def walk(
        self, decision: Decision, prompt: str, call: Callable[[str], Awaitable[Reply]], budget_usd: float
    ) -> CascadeWalk:
        """Walk ``decision.ranked`` with ``call(backend)`` (see the module docstring); never raises for
        an upstream's failure or rejection: they are steps of the walk."""
        steps: list[Step] = []
        spent, accepted = 0.0, False
        for backend in decision.ranked:
            answered = any(s.reply is not None for s in steps)
            if answered and not should_escalate(
                accepted, spent, _predicted_cost(decision, backend), budget_usd
            ):
                break
            step = await self._step(backend, prompt, call)
            steps.append(step)
            if isinstance(step.error, UpstreamRejectedError):
                break
            if step.reply is not None and step.judgement is not None:
                spent += step.cost_usd
                accepted = step.judgement.score >= self.threshold
            if accepted:
                break
        return CascadeWalk(tuple(steps), accepted, budget_usd)

    async def _step(self, backend: str, prompt: str, call: Callable[[str], Awaitable[Reply]]) -> Step:
        started = time.perf_counter()
        try:
            reply = await call(backend)
        except UpstreamError as error:
            return Step(backend, time.perf_counter() - started, error=error)
        seconds = time.perf_counter() - started
        # the judge knows models by the predictor's names, which a router may map to other backend names
        model = self._predictor_router.model_of(backend) or backend
        judgement = await self._judge(prompt, _answer_of(reply, model))
        judge_seconds = time.perf_counter() - started - seconds
        return Step(backend, seconds, reply=reply, judgement=judgement, judge_seconds=judge_seconds)

    async def _judge(self, prompt: str, answer: Answer) -> Judgement:
        try:
            return await self.judge.judge(prompt, answer)
        except Exception as exc:  # the contract says judges never raise; a broken one must not fail the user
            return failed_judgement(f"judge {self.judge.name} failed ({type(exc).__name__})")


def _predicted_cost(decision: Decision, backend: str) -> float:
    candidate = decision.candidate(backend)
    cost = candidate.predicted_cost_usd if candidate is not None else None
    return float(cost) if cost is not None and np.isfinite(cost) else 0.0


def _answer_of(reply: Reply, model: str) -> Answer:
    """The first choice's text and finish reason (empty text when the upstream sent none)."""
    choices = reply.body.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    return Answer(content if isinstance(content, str) else "", first.get("finish_reason"), model)
