"""The ``plan`` router kind: choose a *plan* per prompt — one model alone, or an agreement pair — and walk it.

**Artifact**: a predictor artifact whose columns are plans (``routeyard.policy.plans``): its manifest's
``plans`` lists each column's plan spec and ``models`` their names (``Plan.name``). The predictor
predicts every plan's quality and $ cost for the prompt, exactly as it does models'.

**Decide** (:meth:`PlanRouter.decide`): embed, predict, drop the plans that need a backend that is not
available or that the request excludes (every model a plan may call counts, its escalation too), then
those over the request's cost cap or under its quality floor, and rank the rest with
``routeyard.policy.willingness_to_pay`` — the function the replay scores plans with. The decision's
``ranked`` routes and ``candidates`` are plans, by name.

**Walk** (:meth:`PlanRouter.walk`) the best plan:

- a single plan calls its model and keeps the answer;
- an agreement plan calls ``first`` and ``second`` concurrently (both are paid and logged), judges the
  pair with ``routeyard.judges.kinds.agreement.judge_pair`` (the verdict the replay computes from
  recorded answers; when it cannot tell, the ``fallback`` judge's score of ``first``'s answer ≥
  ``threshold`` accepts it) and keeps ``first``'s answer when ``routeyard.policy.plans.keeps_first``
  says so, else calls ``escalate_to`` and keeps its answer.

**Failures** (an upstream that fails; the fallback rules):

- one of the pair fails: the other's answer is kept if the fallback judge accepts it, else the plan
  escalates; both fail: it escalates;
- the escalation fails: the best answer received is kept — ``first``'s (the designated one), else the
  other's — and the walk says it was not accepted;
- a plan that got no answer at all hands over to the next plan of the ranking that calls none of the
  backends that failed (``routing.plan.failed_plans`` names the plans given up);
- an upstream that *rejects the request* (a 4xx but 401/403/404/408/429) stops the walk: nothing more is
  called, an answer already received is kept, else the rejection is the client's error.

**Config** (:class:`PlanRouterConfig`): the plan ``artifact``, ``backends`` (model → backend, as for the
predictive routers), ``willingness_to_pay``, the ``fallback`` judge (any judge kind; default the
heuristic checks) and its acceptance ``threshold``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from routeyard.evaluation import deployed_routers
from routeyard.evaluation.plan_outcomes import plan_table
from routeyard.gateway.backends.backend import Reply
from routeyard.gateway.errors import UpstreamError, UpstreamRejectedError
from routeyard.gateway.router import Decision
from routeyard.gateway.routers import ROUTER_KINDS, NotReplayableError, RouterContext, RouterKind
from routeyard.gateway.routers.cascade import AnyJudgeConfig, gateway_judge
from routeyard.gateway.routers.predictive import ArtifactRouterConfig, PredictiveRouter
from routeyard.gateway.walk import PlanWalk, Step, answer_of
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.judge import Judge
from routeyard.judges.kinds.agreement import judge_pair, judge_safely
from routeyard.judges.kinds.heuristics import HeuristicsJudgeConfig
from routeyard.policy.plans import AgreementPlan, Plan, SinglePlan, keeps_first, plan_from_spec

if TYPE_CHECKING:
    from routeyard.gateway.deployed_replay import OfflineRouterContext
from routeyard.predictor.artifact import Manifest, load_artifact

Call = Callable[[str], Awaitable[Reply]]


@dataclass(frozen=True)
class _Taken:
    """One plan's calls: its steps, the index of the kept answer among them (None: no answer), the
    pair's verdict, whether the kept answer is the one the plan settles on, and whether an upstream
    rejected the request."""

    steps: tuple[Step, ...]
    kept: int | None
    verdict: str | None = None
    accepted: bool = False
    rejected: bool = False


class PlanRouter:
    """Chooses and walks plans (see the module docstring).

    Args:
        name: the router's name clients select.
        ranking: a predictive router over the artifact's plan columns (its routes are plan names).
        plans: every plan of the artifact, by name.
        fallback: judges an answer when the agreement judge cannot tell or one of a pair failed.
        threshold: the fallback accepts an answer scoring at least this.
        backend_of: the backend of each model a plan names (a model not in it is its own backend name).
    """

    def __init__(
        self,
        name: str,
        ranking: PredictiveRouter,
        plans: Mapping[str, Plan],
        fallback: Judge,
        *,
        threshold: float = 0.5,
        backend_of: Mapping[str, str] | None = None,
        exclude: tuple[str, ...] | list[str] = (),
    ) -> None:
        self.name = name
        self.plans = dict(plans)
        self.fallback = fallback
        self.threshold = threshold
        self._ranking = ranking
        self._backend_of = dict(backend_of or {})
        self.exclude = tuple(exclude)

    def backends_of(self, plan: Plan) -> tuple[str, ...]:
        """The backends ``plan`` may call, in its models' order."""
        return tuple(self._backend_of.get(model, model) for model in plan.models)

    def usable_plans(self, available: set[str], exclude: list[str] | tuple[str, ...] = ()) -> set[str]:
        """The names of the plans whose every backend is ``available`` and not in ``exclude``."""
        return {
            name
            for name, plan in self.plans.items()
            if all(b in available and b not in exclude for b in self.backends_of(plan))
        }

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """The usable plans ranked by willingness to pay; raises NoBackendFitsError when none is left."""
        usable = self.usable_plans(available, (*self.exclude, *options.exclude))
        # the ranking's routes are plans: exclusion by backend is done here, by plan
        return await self._ranking.decide(turns, options.model_copy(update={"exclude": []}), usable)

    async def walk(self, decision: Decision, prompt: str, call: Call, options: RoutingOptions) -> PlanWalk:
        """Walk the best plan of ``decision.ranked`` for ``prompt`` with ``call(backend)``, handing over
        to the next plan when one gets no answer (see the module docstring); never raises for an
        upstream's failure or rejection."""
        steps: list[Step] = []
        tried: list[str] = []
        failed: set[str] = set()
        for name in decision.ranked:
            plan = self.plans[name]
            if failed & set(self.backends_of(plan)):
                continue
            taken = await self._take(plan, prompt, call)
            kept = None if taken.kept is None else len(steps) + taken.kept
            steps += taken.steps
            tried.append(name)
            if kept is not None or taken.rejected:
                return self._walk(steps, tried, taken, kept)
            failed |= {s.backend for s in taken.steps if s.error is not None}
        return self._walk(steps, tried, _Taken((), None), None)

    def _walk(self, steps: list[Step], tried: list[str], last: _Taken, kept: int | None) -> PlanWalk:
        return PlanWalk(
            tuple(steps),
            last.accepted,
            threshold=self.threshold,
            plan=tried[-1] if tried else "",
            failed_plans=tuple(tried[:-1]),
            verdict=last.verdict,
            kept_step=kept,
        )

    async def _take(self, plan: Plan, prompt: str, call: Call) -> _Taken:
        if isinstance(plan, SinglePlan):
            (backend,) = self.backends_of(plan)
            step = await _step(backend, "single", call)
            answered = step.reply is not None
            rejected = isinstance(step.error, UpstreamRejectedError)
            return _Taken((step,), 0 if answered else None, accepted=answered, rejected=rejected)
        return await self._take_pair(plan, prompt, call)

    async def _take_pair(self, plan: AgreementPlan, prompt: str, call: Call) -> _Taken:
        first_backend, second_backend, escalation_backend = self.backends_of(plan)
        pair = list(
            await asyncio.gather(_step(first_backend, "first", call), _step(second_backend, "second", call))
        )
        verdict, settled, best = await self._judge_pair(plan, prompt, pair)
        if settled:
            return _Taken(tuple(pair), best, verdict, accepted=True)
        if any(isinstance(s.error, UpstreamRejectedError) for s in pair):
            return _Taken(tuple(pair), best, verdict, rejected=True)
        escalation = await _step(escalation_backend, "escalation", call)
        steps = (*pair, escalation)
        if escalation.reply is not None:
            return _Taken(steps, 2, verdict, accepted=True)
        return _Taken(steps, best, verdict, rejected=isinstance(escalation.error, UpstreamRejectedError))

    async def _judge_pair(
        self, plan: AgreementPlan, prompt: str, pair: list[Step]
    ) -> tuple[str | None, bool, int | None]:
        """Judge the pair's answers in place (the judgement goes on the step judged): the verdict (None
        unless both answered), whether the plan keeps an answer of the pair, and which step's answer is
        the best received (None when neither answered)."""
        first, second = pair
        if first.reply is not None and second.reply is not None:
            started = time.perf_counter()
            judged = await judge_pair(
                prompt,
                answer_of(first.reply, plan.first),
                answer_of(second.reply, plan.second),
                self.fallback,
            )
            pair[0] = replace(first, judgement=judged.judgement, judge_seconds=time.perf_counter() - started)
            accepts = judged.judgement.score >= self.threshold
            return judged.verdict, keeps_first(judged.verdict, accepts), 0
        for survivor, step in enumerate(pair):  # at most one answered
            if step.reply is not None:
                started = time.perf_counter()
                answer = answer_of(step.reply, plan.models[survivor])
                judgement = await judge_safely(self.fallback, prompt, answer)
                pair[survivor] = replace(
                    step, judgement=judgement, judge_seconds=time.perf_counter() - started
                )
                return None, judgement.score >= self.threshold, survivor
        return None, False, None


async def _step(backend: str, role: str, call: Call) -> Step:
    """``call(backend)`` as a step in ``role``: its reply, or the upstream error it failed with."""
    started = time.perf_counter()
    try:
        reply = await call(backend)
    except UpstreamError as error:
        return Step(backend, time.perf_counter() - started, error=error, role=role)
    return Step(backend, time.perf_counter() - started, reply=reply, role=role)


def plans_of(manifest: Manifest) -> tuple[Plan, ...]:
    """The plans of a plan artifact's manifest, in column order; raises ``ValueError`` when it lists no
    plans, a spec is not a plan, or the plans' names are not its columns'."""
    if not manifest.plans:
        raise ValueError("its artifact lists no plans: it is a predictor over models, not a plan artifact")
    plans = tuple(plan_from_spec(spec) for spec in manifest.plans)
    if tuple(plan.name for plan in plans) != manifest.models:
        raise ValueError("its artifact's plans are not its columns (manifest plans and models differ)")
    return plans


class PlanRouterConfig(ArtifactRouterConfig):
    """``kind: plan``: willingness-to-pay routing among the plans of a plan ``artifact`` (its ``models``
    are plans; ``backends`` maps the models the plans call to backends); ``fallback`` judges an answer
    when agreement cannot tell, accepting it at ``threshold``."""

    kind: Literal["plan"] = "plan"
    fallback: AnyJudgeConfig = Field(
        default_factory=HeuristicsJudgeConfig,
        description="the judge of an answer when the agreement judge cannot tell or one of a pair failed",
    )
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="the fallback's acceptance score")

    def problems(self, backends: set[str]) -> list[str]:
        """The artifact's, the fallback's (prefixed ``fallback``) and the mapping's problems."""
        fallback = [f"fallback {problem}" for problem in self.fallback.problems(backends)]
        return self.artifact_problems(backends) + fallback + self.mapping_problems(backends)

    def manifest_problems(self, manifest: Manifest, backends: set[str]) -> list[str]:
        """Not a plan artifact, or no plan whose every model is (mapped to) one of ``backends``."""
        try:
            plans = plans_of(manifest)
        except ValueError as exc:
            return [str(exc)]
        if any(all(self.backends.get(m, m) in backends for m in plan.models) for plan in plans):
            return []
        return [
            "no plan of its artifact has every model it calls among the configured backends; name "
            "backends after the models or map them with `backends: {model: backend}`"
        ]

    def replayed(self, offline: OfflineRouterContext) -> deployed_routers.WillingnessToPayRouter:
        """Willingness-to-pay routing among the plans the table can serve (every backend a plan calls is
        in it and not excluded), scored on their outcomes computed from the recorded answers, with the
        ``fallback`` judge's verdicts (≥ ``threshold``) where agreement cannot tell."""
        predicted, manifest = offline.predict(self.artifact)
        mapped = [_mapped(plan, self.backends) for plan in plans_of(manifest)]
        usable = [
            j
            for j, plan in enumerate(mapped)
            if all(offline.column(b) is not None and b not in self.exclude for b in plan.models)
        ]
        if not usable:
            raise NotReplayableError("no plan of its artifact calls only backends the table has")
        scores, _cost = offline.judge_scores(self.fallback, self.model_of())
        accepts = np.nan_to_num(scores, nan=-np.inf) >= self.threshold
        outcomes = plan_table(offline.table, tuple(mapped[j] for j in usable), fallback_accepts=accepts)
        return deployed_routers.WillingnessToPayRouter(
            self.name,
            predicted.quality[:, usable],
            predicted.cost[:, usable],
            outcomes.table.quality,
            outcomes.table.cost,
            np.ones(len(usable), dtype=bool),
            self.willingness_to_pay,
        )


def _mapped(plan: Plan, backend_of: Mapping[str, str]) -> Plan:
    """``plan`` calling backends: its models renamed by ``backend_of`` (a model not in it keeps its name)."""
    if isinstance(plan, SinglePlan):
        return SinglePlan(backend_of.get(plan.model, plan.model))
    first, second, escalate_to = (backend_of.get(m, m) for m in (plan.first, plan.second, plan.escalate_to))
    return AgreementPlan(first, second, escalate_to)


def build_plan_router(config: PlanRouterConfig, context: RouterContext) -> PlanRouter:
    """The plan router ``config`` describes. Raises ValueError (ArtifactError among them) when the
    artifact does not load or is no plan artifact, no plan can be served by ``context.backends``, or the
    fallback judge cannot be built."""
    predictor, manifest = load_artifact(config.artifact, context.batcher.embedder)
    plans = plans_of(manifest)
    ranking = PredictiveRouter(
        config.name, predictor, context.batcher, willingness_to_pay=config.willingness_to_pay
    )
    router = PlanRouter(
        config.name,
        ranking,
        {plan.name: plan for plan in plans},
        gateway_judge(config.fallback, context),
        threshold=config.threshold,
        backend_of=config.backends,
        exclude=config.exclude,
    )
    if not router.usable_plans(set(context.backends)):
        raise ValueError("no plan of its artifact has every model it calls among the configured backends")
    return router


ROUTER_KINDS.register(RouterKind("plan", PlanRouterConfig, build_plan_router))
