"""The ``predictive`` router kind: willingness-to-pay routing on a trained predictor's quality and cost.

A :class:`PredictiveRouter` embeds the prompt (micro-batched), predicts every model's quality and $ cost
with a predictor artifact from ``routeyard train``, drops backends the request excludes or that break its
cost cap or quality floor, and ranks the rest with ``routeyard.policy.willingness_to_pay`` — the same
function the replay harness scores.

Its config says ``kind: <predictor kind>`` (``knn``, ``mlp``, any registered in
``routeyard.predictor.kinds.PREDICTOR_KINDS``), which must be the kind its artifact holds. Every router
over a predictor artifact (the cascade too) shares :class:`ArtifactRouterConfig` and
:func:`predictive_router`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routeyard.evaluation import deployed_routers
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.errors import NoBackendFitsError
from routeyard.gateway.exploration import ExplorationPolicy
from routeyard.gateway.pacing_store import InMemoryPacingStore, PacingStore, RedisPacingStore
from routeyard.gateway.router import Assessment, Candidate, Decision
from routeyard.gateway.routers import ROUTER_KINDS, RouterConfig, RouterContext, RouterKind
from routeyard.gateway.spend_pacing import PacingReading, SpendPacer
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.decision_spans import traced_decision
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig
from routeyard.policy.pacing import PacingController, PacingTuning
from routeyard.policy.willingness_to_pay import rank_by_willingness_to_pay
from routeyard.predictor.artifact import ArtifactError, Manifest, load_artifact, read_manifest
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.predictor.quality_predictor import QualityPredictor
from routeyard.registry import kind_union

if TYPE_CHECKING:
    from routeyard.gateway.deployed_replay import ArtifactPredictions, OfflineRouterContext


class PredictiveRouter:
    """Willingness-to-pay routing on a predictor's quality and cost (see the module docstring).

    ``backend_of`` maps the predictor's model names to backend names; models without a backend are
    never chosen, nor are the backends in ``exclude``. ``exploration``: how it explores
    (``routeyard.gateway.exploration``; None: it does not).
    """

    def __init__(
        self,
        name: str,
        predictor: QualityPredictor,
        batcher: EmbeddingBatcher,
        *,
        willingness_to_pay: float = math.inf,
        backend_of: dict[str, str] | None = None,
        exclude: Collection[str] = (),
        exploration: ExplorationPolicy | None = None,
    ) -> None:
        self.name = name
        self.exploration = exploration
        self.exclude = frozenset(exclude)
        self.predictor = predictor
        self.willingness_to_pay = willingness_to_pay
        self._batcher = batcher
        mapping = backend_of or {}
        self.backends = tuple(mapping.get(model, model) for model in predictor.models)
        self._model_of = dict(zip(self.backends, predictor.models, strict=True))

    @property
    def tracer(self) -> Tracer | None:
        """The gateway's tracer (its batcher's; None: untraced)."""
        return self._batcher.tracer

    def model_of(self, backend: str) -> str | None:
        """The predictor's model name that ``backend`` serves (None for a backend it does not know)."""
        return self._model_of.get(backend)

    async def assess(
        self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]
    ) -> Assessment:
        """Every backend's predicted quality and $ cost for the prompt, and which ones the request allows."""
        start = time.perf_counter()
        prediction = await self._batcher.predict(embedding_text(turns), self.predictor)
        quality, cost = prediction.quality[0], prediction.cost[0]
        refused = self.exclude.union(options.exclude)
        allowed = np.array([b in available and b not in refused for b in self.backends])
        if options.max_cost_usd is not None:
            allowed &= cost <= options.max_cost_usd
        if options.min_quality is not None:
            allowed &= quality >= options.min_quality
        if not allowed.any():
            raise NoBackendFitsError(
                f"router {self.name}: no backend is allowed under the request's exclude, max_cost_usd "
                "and min_quality",
                param="routing",
            )
        candidates = tuple(
            Candidate(b, float(q), float(c), bool(a))
            for b, q, c, a in zip(self.backends, quality, cost, allowed, strict=True)
        )
        return Assessment(quality, cost, allowed, candidates, time.perf_counter() - start)

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """The allowed backends ranked by willingness to pay (the request's, else the router's); in a
        ``decide`` span when traced."""
        tracer = self._batcher.tracer
        if tracer is None:
            return await self._decide(turns, options, available)
        return await traced_decision(tracer, self.name, self._decide(turns, options, available))

    async def _decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        assessment = await self.assess(turns, options, available)
        if options.willingness_to_pay is not None:
            w, source = options.willingness_to_pay, "request"
        else:
            w, source = self.own_willingness_to_pay()
        (order,) = rank_by_willingness_to_pay(
            assessment.quality[None, :], assessment.cost[None, :], w, assessment.allowed[None, :]
        )
        ranked = tuple(self.backends[j] for j in order)
        return Decision(self.name, w, ranked, assessment.candidates, assessment.seconds, source)

    def own_willingness_to_pay(self) -> tuple[float, str]:
        """The w a request that gives none is routed with, and where it comes from (``config``)."""
        return self.willingness_to_pay, "config"


class PacedPredictiveRouter(PredictiveRouter):
    """A predictive router whose own w is its ``pacer``'s (a :class:`~routeyard.gateway.router.PacedRouter`):
    the $ of the requests it decided steer it toward the spend target."""

    def __init__(
        self,
        name: str,
        predictor: QualityPredictor,
        batcher: EmbeddingBatcher,
        *,
        pacer: SpendPacer,
        backend_of: dict[str, str] | None = None,
        exclude: Collection[str] = (),
        exploration: ExplorationPolicy | None = None,
    ) -> None:
        super().__init__(
            name, predictor, batcher, backend_of=backend_of, exclude=exclude, exploration=exploration
        )
        self.pacer = pacer

    def own_willingness_to_pay(self) -> tuple[float, str]:
        """The pacer's current w (``pacing``)."""
        return self.pacer.current(), "pacing"

    def observe_spend(self, cost_usd: float) -> None:
        self.pacer.observe(cost_usd)

    def pacing(self) -> PacingReading:
        return self.pacer.reading()


class ArtifactRouterConfig(RouterConfig):
    """What every router over a predictor artifact is configured with.

    ``artifact``: a predictor artifact from ``routeyard train`` whose model names are backend names, or
    are mapped to them by ``backends`` (model → backend). ``willingness_to_pay``: $ per unit quality
    (``inf``: the best quality, whatever it costs). ``exclude``: backends this router never routes to
    (kept for other routers and for clients that name them).
    """

    artifact: Path
    willingness_to_pay: float = Field(default=math.inf, ge=0.0)
    backends: dict[str, str] = Field(default_factory=dict)
    exclude: list[str] = Field(default_factory=list)

    def problems(self, backends: set[str]) -> list[str]:
        """The artifact's and the mapping's problems."""
        return self.artifact_problems(backends) + self.mapping_problems(backends)

    def artifact_problems(self, backends: set[str]) -> list[str]:
        """A missing or damaged manifest, or what :meth:`manifest_problems` finds in it."""
        if not self.artifact.is_dir():
            return [f"artifact {self.artifact} is not a directory"]
        try:
            manifest = read_manifest(self.artifact)
        except ArtifactError as exc:
            return [str(exc)]
        return self.manifest_problems(manifest, backends)

    def manifest_problems(self, manifest: Manifest, backends: set[str]) -> list[str]:
        """No model of the artifact (mapped by ``self.backends``) is one of ``backends``."""
        if {self.backends.get(model, model) for model in manifest.models} & backends:
            return []
        return [
            f"none of its artifact's models ({', '.join(manifest.models)}) is a configured "
            "backend; name backends after them or map them with `backends: {model: backend}`"
        ]

    def mapping_problems(self, backends: set[str]) -> list[str]:
        """``self.backends`` maps models to, or ``exclude`` names, names that are not in ``backends``."""
        problems = []
        if unknown := sorted(set(self.backends.values()) - backends):
            problems.append(f"backends maps to unknown backends {unknown}")
        if unknown := sorted(set(self.exclude) - backends):
            problems.append(f"exclude names unknown backends {unknown}")
        return problems

    def offline_predictions(self, offline: OfflineRouterContext) -> ArtifactPredictions:
        """The artifact's predictions over ``offline``'s table, for replaying this router."""
        return offline.artifact_predictions(self.artifact, self.backends, self.exclude)

    def model_of(self) -> dict[str, str]:
        """Backend → the artifact's model name, for the backends ``backends`` renames."""
        return {backend: model for model, backend in self.backends.items()}


# Built as the cascade's is (``routeyard.gateway.routers.cascade``): the judge kinds registered when this
# module is imported.
if TYPE_CHECKING:
    AnyJudgeConfig = JudgeConfig
else:
    AnyJudgeConfig = kind_union({k.name: k.config for k in JUDGE_KINDS}, known=JUDGE_KINDS.names())


class ExplorationConfig(BaseModel):
    """A predictive router's ``exploration:`` (``routeyard.gateway.exploration``): for a ``fraction`` of
    its answered, non-streamed requests, one other allowed candidate is asked too, off the request's
    path, and both answers are graded by ``grader`` (a judge of any kind; required when ``fraction`` >
    0) and logged; at most ``budget_usd_per_day`` $ (the other answers and every grading) per UTC day."""

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of answered requests explored (0: none)"
    )
    budget_usd_per_day: float = Field(
        default=1.0, ge=0.0, allow_inf_nan=False, description="$ of exploring spend per UTC day"
    )
    grader: AnyJudgeConfig | None = Field(default=None, description="the judge that grades both answers")

    def problems(self, backends: set[str]) -> list[str]:
        """No grader while exploring, or what is wrong with the grader (prefixed ``exploration grader``)."""
        if self.fraction > 0.0 and self.grader is None:
            return [
                f"exploration: a grader is needed when fraction > 0 (a judge of kind "
                f"{', '.join(JUDGE_KINDS.names())})"
            ]
        if self.grader is None:
            return []
        return [f"exploration grader {problem}" for problem in self.grader.problems(backends)]


class PredictiveRouterConfig(ArtifactRouterConfig):
    """``kind: <predictor kind>`` (``knn``, ``mlp``, …): willingness-to-pay routing on the predictor in
    ``artifact``, which must be of that kind.

    Budget pacing: with ``spend_target_usd_per_hour`` or ``spend_target_usd_per_day`` (at most one) the
    router's w is steered within [``w_min``, ``w_max``] so that the $ its requests cost tracks the target
    (``routeyard.gateway.spend_pacing``), starting from ``willingness_to_pay`` (clipped to the bounds);
    ``pacing_response_seconds`` is the time over which a deviation is corrected. A request's own
    ``routing.willingness_to_pay`` (or ``model: <router>-<w>``) still wins.

    Exploration: ``exploration`` (:class:`ExplorationConfig`; off by default).
    """

    kind: str
    spend_target_usd_per_hour: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    spend_target_usd_per_day: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    w_min: float = Field(default=1e-4, gt=0.0, allow_inf_nan=False)
    w_max: float = Field(default=10.0, gt=0.0, allow_inf_nan=False)
    pacing_response_seconds: float = Field(default=300.0, gt=0.0, allow_inf_nan=False)
    exploration: ExplorationConfig = Field(default_factory=ExplorationConfig)

    @model_validator(mode="after")
    def _one_target_within_bounds(self) -> PredictiveRouterConfig:
        if self.spend_target_usd_per_hour is not None and self.spend_target_usd_per_day is not None:
            raise ValueError("give spend_target_usd_per_hour or spend_target_usd_per_day, not both")
        if self.w_min > self.w_max:
            raise ValueError(f"w_min ({self.w_min:g}) must be ≤ w_max ({self.w_max:g})")
        return self

    def pacing_controller(self) -> PacingController | None:
        """The controller of its spend target, or None when it has none (a fixed w)."""
        if self.spend_target_usd_per_hour is not None:
            per_second = self.spend_target_usd_per_hour / 3600.0
        elif self.spend_target_usd_per_day is not None:
            per_second = self.spend_target_usd_per_day / 86400.0
        else:
            return None
        start = min(self.w_max, max(self.w_min, self.willingness_to_pay))
        tuning = PacingTuning(self.w_min, self.w_max, start, self.pacing_response_seconds)
        return PacingController(per_second, tuning)

    @field_validator("kind")
    @classmethod
    def _is_a_predictor_kind(cls, kind: str) -> str:
        known = PREDICTOR_KINDS.names()
        if kind not in known:
            raise ValueError(f"kind must be a predictor kind: one of {', '.join(known)}")
        return kind

    def problems(self, backends: set[str]) -> list[str]:
        """The artifact's, the mapping's and the exploration's problems."""
        return super().problems(backends) + self.exploration.problems(backends)

    def manifest_problems(self, manifest: Manifest, backends: set[str]) -> list[str]:
        """An artifact of another predictor kind than ``kind``, and the models' problems."""
        mismatch = kind_mismatch(self.kind, manifest.kind)
        return ([mismatch] if mismatch else []) + super().manifest_problems(manifest, backends)

    def replayed(self, offline: OfflineRouterContext) -> deployed_routers.WillingnessToPayRouter:
        """Willingness-to-pay routing on the artifact's predictions at the configured w."""
        predictions = self.offline_predictions(offline)
        if mismatch := kind_mismatch(self.kind, predictions.manifest.kind):
            raise ValueError(mismatch)
        table = offline.table
        return deployed_routers.WillingnessToPayRouter(
            self.name,
            predictions.quality,
            predictions.cost,
            table.quality,
            table.cost,
            predictions.allowed,
            self.willingness_to_pay,
        )


def kind_mismatch(kind: str, artifact_kind: str) -> str | None:
    """The message for a router configured with ``kind`` over an artifact of ``artifact_kind``, or None
    when they are the same."""
    if kind == artifact_kind:
        return None
    return f"kind {kind!r}, but its artifact holds a {artifact_kind!r} predictor; say kind: {artifact_kind}"


def predictive_router(
    config: ArtifactRouterConfig, context: RouterContext, *, kind: str | None = None
) -> PredictiveRouter:
    """A predictive router over ``config.artifact`` (loaded for the batcher's embedder).

    Raises ValueError (:class:`ArtifactError` among them) when the artifact does not load, holds another
    predictor kind than ``kind`` (when given), or none of its models is one of ``context.backends``.
    """
    if kind is not None and (mismatch := kind_mismatch(kind, read_manifest(config.artifact).kind)):
        raise ValueError(mismatch)
    predictor, _manifest = load_artifact(config.artifact, context.batcher.embedder)
    router = PredictiveRouter(
        config.name,
        predictor,
        context.batcher,
        willingness_to_pay=config.willingness_to_pay,
        backend_of=config.backends,
        exclude=config.exclude,
    )
    if not set(router.backends) & set(context.backends):
        raise ValueError("none of its predictor's models is a configured backend")
    return router


def build_predictive_router(config: PredictiveRouterConfig, context: RouterContext) -> PredictiveRouter:
    """The predictive router ``config`` describes, paced when it has a spend target (its state in Redis
    at ``context.redis_url`` when set, else in memory); raises ValueError (see :func:`predictive_router`)."""
    router = predictive_router(config, context, kind=config.kind)
    router.exploration = exploration_policy(config, context, router)
    controller = config.pacing_controller()
    if controller is None:
        return router
    store: PacingStore = (
        RedisPacingStore(context.redis_url, config.name) if context.redis_url else InMemoryPacingStore()
    )
    return PacedPredictiveRouter(
        config.name,
        router.predictor,
        context.batcher,
        pacer=SpendPacer(controller, store),
        backend_of=config.backends,
        exclude=config.exclude,
        exploration=router.exploration,
    )


def exploration_policy(
    config: PredictiveRouterConfig, context: RouterContext, router: PredictiveRouter
) -> ExplorationPolicy | None:
    """How ``router`` explores (its grader built over the gateway's backends, as a cascade's judge is),
    or None when it does not (``fraction`` 0); raises ValueError when the grader cannot be built."""
    exploration = config.exploration
    if exploration.fraction == 0.0:
        return None
    if exploration.grader is None:
        raise ValueError("exploration: a grader is needed when fraction > 0")
    # the cascade's module imports this one: imported here, when both are loaded
    from routeyard.gateway.routers.cascade import gateway_judge

    grader = gateway_judge(exploration.grader, context)
    return ExplorationPolicy(exploration.fraction, exploration.budget_usd_per_day, grader, router.model_of)


ROUTER_KINDS.register(RouterKind("predictive", PredictiveRouterConfig, build_predictive_router))
