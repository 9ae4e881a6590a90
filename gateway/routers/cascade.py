"""The ``cascade`` router kind: cheap backends first, escalating while a judge rejects the answer.

**Plan** (:meth:`CascadeRouter.decide`): a predictor (the same artifact kinds as the predictive routers)
predicts every backend's quality and $ cost for the prompt; the allowed backends are ordered by
ascending predicted cost (``routeyard.policy.cascade.cascade_order``), or by the configured order.

**Walk** (:meth:`CascadeRouter.walk`): call the first; the judge scores its answer; call the next only
while ``routeyard.policy.cascade.should_escalate`` says so — the answer was rejected (score below the
threshold) and the next call's predicted cost fits what is left of the budget. That is the rule the
replay harness scores. A backend that fails moves the walk on to the next candidate (a failed call
costs nothing and is never the kept answer; until one answers, the budget does not stop the walk). A
backend that *rejects the request* (an upstream 4xx but 401/403/404/408/429) ends the walk: the request
is at fault, not the backend; an answer received before is still kept (``Walk.rejection``
is the 4xx otherwise). The answer kept is the last one received; the cost is the sum of every call,
the judge's gradings included (an LLM judge pays for each). A step's ``seconds`` is the backend call
alone, ``judge_seconds`` the judging.

**Config** (:class:`CascadeRouterConfig`): a predictor ``artifact`` (and its ``backends`` mapping), a
``judge`` of any judge kind (``routeyard.judges.kinds``), the ``threshold``, ``budget_usd`` and ``order``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from routeyard.evaluation import deployed_routers
from routeyard.gateway.backends.backend import Backend, Reply
from routeyard.gateway.backends.chat_completer import BackendCompleter
from routeyard.gateway.errors import NoBackendFitsError, UpstreamError, UpstreamRejectedError
from routeyard.gateway.router import Decision
from routeyard.gateway.routers import ROUTER_KINDS, NotReplayableError, RouterContext, RouterKind
from routeyard.gateway.routers.predictive import ArtifactRouterConfig, PredictiveRouter, predictive_router
from routeyard.gateway.tracing.decision_spans import traced_decision
from routeyard.gateway.tracing.traced_judge import traced_judge
from routeyard.gateway.walk import Step, Walk, answer_of
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.chat_completer import ChatCompleter
from routeyard.judges.judge import Answer, Judge, Judgement, failed_judgement
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, build_judge
from routeyard.policy.cascade import cascade_order, should_escalate
from routeyard.registry import kind_union

if TYPE_CHECKING:
    from routeyard.gateway.deployed_replay import OfflineRouterContext


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
        """The plan: allowed backends in the order the walk tries them; in a ``decide`` span when traced."""
        tracer = self._predictor_router.tracer
        if tracer is None:
            return await self._decide(turns, options, available)
        return await traced_decision(tracer, self.name, self._decide(turns, options, available))

    async def _decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
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
        self,
        decision: Decision,
        prompt: str,
        call: Callable[[str], Awaitable[Reply]],
        options: RoutingOptions,
    ) -> Walk:
        """Walk ``decision.ranked`` with ``call(backend)`` within :meth:`budget_for` the request (see
        the module docstring); never raises for an upstream's failure or rejection: they are steps of
        the walk."""
        budget_usd = self.budget_for(options)
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
        return Walk(tuple(steps), accepted, budget_usd, self.threshold)

    async def _step(self, backend: str, prompt: str, call: Callable[[str], Awaitable[Reply]]) -> Step:
        started = time.perf_counter()
        try:
            reply = await call(backend)
        except UpstreamError as error:
            return Step(backend, time.perf_counter() - started, error=error)
        seconds = time.perf_counter() - started
        # the judge knows models by the predictor's names, which a router may map to other backend names
        model = self._predictor_router.model_of(backend) or backend
        judgement = await self._judge(prompt, answer_of(reply, model))
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


# The judge config's union is built when this module is imported: it holds the judge kinds registered
# then — the built-in ones and those of installed distributions' entry points (``routeyard.judge``),
# not a kind registered by hand later.
if TYPE_CHECKING:
    AnyJudgeConfig = JudgeConfig
else:
    AnyJudgeConfig = kind_union({k.name: k.config for k in JUDGE_KINDS}, known=JUDGE_KINDS.names())


class CascadeRouterConfig(ArtifactRouterConfig):
    """``kind: cascade``: the predictor ``artifact`` orders the backends by predicted cost (or ``order``
    lists them, only those), escalating while ``judge`` scores an answer below ``threshold`` and the
    next call's predicted cost fits ``budget_usd`` per request. ``willingness_to_pay`` is unused."""

    kind: Literal["cascade"] = "cascade"
    judge: AnyJudgeConfig | None = None
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    budget_usd: float = Field(default=math.inf, gt=0.0)
    order: list[str] = Field(default_factory=list)

    def problems(self, backends: set[str]) -> list[str]:
        """The artifact's, the judge's (prefixed ``judge``), the order's and the mapping's problems."""
        return (
            self.artifact_problems(backends)
            + self.judge_problems(backends)
            + self.order_problems(backends)
            + self.mapping_problems(backends)
        )

    def judge_problems(self, backends: set[str]) -> list[str]:
        """No judge, or what is wrong with it."""
        if self.judge is None:
            return [f"a cascade needs a judge (kind {_one_of(JUDGE_KINDS.names())})"]
        return [f"judge {problem}" for problem in self.judge.problems(backends)]

    def order_problems(self, backends: set[str]) -> list[str]:
        """``order`` names backends that are not in ``backends``."""
        unknown = sorted(set(self.order) - backends)
        return [f"order names unknown backends {unknown}"] if unknown else []

    def replayed(self, offline: OfflineRouterContext) -> deployed_routers.CascadeRouter:
        """The cascade walked over the recorded answers: its judge scores them, the artifact's predicted
        costs order the steps (or ``order`` does) and decide each escalation within ``budget_usd``."""
        if self.judge is None:
            raise ValueError("a cascade needs a judge")
        predictions = self.offline_predictions(offline)
        scores, judge_cost = offline.judge_scores(self.judge, self.model_of())
        columns = (offline.column(backend) for backend in self.order)
        order = tuple(c for c in columns if c is not None and predictions.allowed[c])
        if self.order and not order:
            raise NotReplayableError(f"no backend of its order ({', '.join(self.order)}) is in the table")
        table = offline.table
        return deployed_routers.CascadeRouter(
            self.name,
            predictions.cost,
            table.quality,
            table.cost,
            scores,
            judge_cost,
            predictions.allowed,
            order,
            self.threshold,
            self.budget_usd,
        )


def gateway_judge(config: JudgeConfig, context: RouterContext) -> Judge:
    """The judge ``config`` describes, built over the gateway's backends (:func:`judge_context`), each
    grading in a span when the gateway traces; raises ValueError when it cannot be built."""
    return traced_judge(build_judge(config, judge_context(context)), context.tracer)


def judge_context(context: RouterContext) -> JudgeContext:
    """What a judge is built with in a gateway: its embedder, and completers over its backends."""
    return JudgeContext(context.batcher.embedder, _completers(context.backends))


def _completers(backends: dict[str, Backend]) -> Callable[[str], ChatCompleter]:
    def completer(name: str) -> ChatCompleter:
        if name not in backends:
            raise ValueError(f"judge backend {name!r} is not a configured backend")
        return BackendCompleter(backends[name])

    return completer


def build_cascade_router(config: CascadeRouterConfig, context: RouterContext) -> CascadeRouter:
    """The cascade ``config`` describes; raises ValueError when it has no judge, its judge cannot be
    built, or its artifact does not fit (see ``predictive_router``)."""
    if config.judge is None:
        raise ValueError("a cascade needs a judge")
    return CascadeRouter(
        config.name,
        predictive_router(config, context),
        gateway_judge(config.judge, context),
        threshold=config.threshold,
        budget_usd=config.budget_usd,
        order=tuple(config.order),
    )


def _one_of(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


ROUTER_KINDS.register(RouterKind("cascade", CascadeRouterConfig, build_cascade_router))
