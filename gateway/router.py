"""Routers: turn a request's prompt into a ranked list of backends to try, with the reasons.

A :class:`PredictiveRouter` embeds the prompt (micro-batched), predicts every model's quality and $ cost
with a trained predictor, drops backends the request excludes or that break its cost cap or quality
floor, and ranks the rest with ``routeyard.policy.willingness_to_pay`` — the same function the replay
harness scores. A :class:`FixedRouter` always names one backend.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.errors import NoBackendFitsError
from routeyard.gateway.wire import RoutingOptions
from routeyard.policy.willingness_to_pay import rank_by_willingness_to_pay
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.quality_predictor import QualityPredictor


@dataclass(frozen=True)
class Candidate:
    """A backend the router considered, with its predictions (``None`` for a fixed route)."""

    backend: str
    predicted_quality: float | None
    predicted_cost_usd: float | None
    allowed: bool


@dataclass(frozen=True)
class Decision:
    """A router's verdict: ``ranked`` backends, best first, and every candidate it looked at."""

    router: str
    willingness_to_pay: float | None
    ranked: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    routing_seconds: float

    @property
    def routed(self) -> bool:
        """Whether a router decided (False when ``model`` named a backend directly)."""
        return bool(self.candidates)

    def candidate(self, backend: str) -> Candidate | None:
        return next((c for c in self.candidates if c.backend == backend), None)


@dataclass(frozen=True)
class Assessment:
    """A predictor's view of one prompt: (m,) predicted quality and $ cost per backend, the (m,) mask of
    backends the request allows, the same as :class:`Candidate` objects, and the seconds it took."""

    quality: NDArray[np.float64]
    cost: NDArray[np.float64]
    allowed: NDArray[np.bool_]
    candidates: tuple[Candidate, ...]
    seconds: float


class Router(Protocol):
    name: str

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """Rank the ``available`` backends for a prompt; raises NoBackendFitsError when none is allowed."""
        ...


class FixedRouter:
    """Always the configured backend."""

    def __init__(self, name: str, backend: str) -> None:
        self.name = name
        self.backend = backend

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        allowed = self.backend in available and self.backend not in options.exclude
        if not allowed:
            raise NoBackendFitsError(f"router {self.name} only routes to {self.backend}, which is excluded")
        candidate = Candidate(self.backend, None, None, True)
        return Decision(self.name, None, (self.backend,), (candidate,), 0.0)


class PredictiveRouter:
    """Willingness-to-pay routing on a predictor's quality and cost (see the module docstring).

    ``backend_of`` maps the predictor's model names to backend names; models without a backend are
    never chosen.
    """

    def __init__(
        self,
        name: str,
        predictor: QualityPredictor,
        batcher: EmbeddingBatcher,
        *,
        willingness_to_pay: float = math.inf,
        backend_of: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.predictor = predictor
        self.willingness_to_pay = willingness_to_pay
        self._batcher = batcher
        mapping = backend_of or {}
        self.backends = tuple(mapping.get(model, model) for model in predictor.models)
        self._model_of = dict(zip(self.backends, predictor.models, strict=True))

    def model_of(self, backend: str) -> str | None:
        """The predictor's model name that ``backend`` serves (None for a backend it does not know)."""
        return self._model_of.get(backend)

    async def assess(
        self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]
    ) -> Assessment:
        """Every backend's predicted quality and $ cost for the prompt, and which ones the request allows."""
        start = time.perf_counter()
        vector = await self._batcher.embed(embedding_text(turns))
        prediction = await asyncio.to_thread(self.predictor.predict, vector[None, :])
        quality, cost = prediction.quality[0], prediction.cost[0]
        allowed = np.array([b in available and b not in options.exclude for b in self.backends])
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
        assessment = await self.assess(turns, options, available)
        w = self.willingness_to_pay if options.willingness_to_pay is None else options.willingness_to_pay
        (order,) = rank_by_willingness_to_pay(
            assessment.quality[None, :], assessment.cost[None, :], w, assessment.allowed[None, :]
        )
        ranked = tuple(self.backends[j] for j in order)
        return Decision(self.name, w, ranked, assessment.candidates, assessment.seconds)
