"""The ``fixed`` router kind: always the one configured backend (unless the request excludes it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from routeyard.evaluation import deployed_routers
from routeyard.gateway.errors import NoBackendFitsError
from routeyard.gateway.router import Candidate, Decision
from routeyard.gateway.routers import (
    ROUTER_KINDS,
    NotReplayableError,
    RouterConfig,
    RouterContext,
    RouterKind,
)
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.decision_spans import traced_decision
from routeyard.gateway.wire import RoutingOptions

if TYPE_CHECKING:
    from routeyard.gateway.deployed_replay import OfflineRouterContext


class FixedRouter:
    """Always ``backend``; each decision in a span when ``tracer`` is given."""

    def __init__(self, name: str, backend: str, tracer: Tracer | None = None) -> None:
        self.name = name
        self.backend = backend
        self.tracer = tracer

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """Just ``backend``; raises NoBackendFitsError when it is unavailable or the request excludes it."""
        if self.tracer is None:
            return await self._decide(options, available)
        return await traced_decision(self.tracer, self.name, self._decide(options, available))

    async def _decide(self, options: RoutingOptions, available: set[str]) -> Decision:
        allowed = self.backend in available and self.backend not in options.exclude
        if not allowed:
            raise NoBackendFitsError(f"router {self.name} only routes to {self.backend}, which is excluded")
        candidate = Candidate(self.backend, None, None, True)
        return Decision(self.name, None, (self.backend,), (candidate,), 0.0)


class FixedRouterConfig(RouterConfig):
    """``kind: fixed``: always ``backend``."""

    kind: Literal["fixed"] = "fixed"
    backend: str = Field(min_length=1)

    def problems(self, backends: set[str]) -> list[str]:
        """``backend`` must be one of ``backends``."""
        return [] if self.backend in backends else [f"backend {self.backend!r} is not a configured backend"]

    def replayed(self, offline: OfflineRouterContext) -> deployed_routers.FixedRouter:
        """Every prompt to ``backend``."""
        column = offline.column(self.backend)
        if column is None:
            raise NotReplayableError(f"its backend {self.backend} is not in the table")
        table = offline.table
        return deployed_routers.FixedRouter(self.name, column, table.quality, table.cost, self.backend)


def build_fixed_router(config: FixedRouterConfig, context: RouterContext) -> FixedRouter:
    """The fixed router; raises ValueError when its backend is not one of ``context.backends``."""
    if config.backend not in context.backends:
        raise ValueError(f"backend {config.backend!r} is not a configured backend")
    return FixedRouter(config.name, config.backend, context.tracer)


ROUTER_KINDS.register(RouterKind("fixed", FixedRouterConfig, build_fixed_router))
