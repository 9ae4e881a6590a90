"""Router kinds: one module here per kind of :class:`~routeyard.gateway.router.Router` a gateway serves.

A kind module registers a :class:`RouterKind` in :data:`ROUTER_KINDS` when it is imported: its name, its
config (a :class:`RouterConfig` subclass) and how to build the router from that config and a
:class:`RouterContext`. A kind's name is its config's ``kind``, except for ``predictive``, whose config
serves every predictor kind (``kind: knn``, ``kind: mlp``, …). A new kind is one new module in this
package (or in another distribution, through the entry-point group ``routeyard.router``);
:func:`build_router` builds any of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.router import Router
from routeyard.gateway.tracing import Tracer
from routeyard.registry import ConfiguredKind, KindConfig, Registry, UnknownKindError

if TYPE_CHECKING:
    from routeyard.evaluation.replayed_routers import DeployedRouter
    from routeyard.gateway.deployed_replay import OfflineRouterContext


class NotReplayableError(ValueError):
    """A configured router that an outcome table cannot replay offline; the message says why."""


class RouterConfig(KindConfig):
    """A named router clients select with ``model``; each kind subclasses it."""

    name: str = Field(min_length=1)

    def problems(self, backends: set[str]) -> list[str]:
        """What is wrong with the config that its fields alone do not show (a backend that is not one of
        ``backends``, the gateway's backend names; a missing or damaged artifact manifest), one sentence
        each; [] when nothing is. Reads manifests, never loads a model."""
        return []

    def replayed(self, offline: OfflineRouterContext) -> DeployedRouter:
        """This router as ``routeyard replay --config`` scores it on ``offline``'s table, through the
        decision functions the gateway calls (``routeyard.evaluation.deployed_routers``).

        Raises :class:`NotReplayableError` when the table cannot replay it (the default: a kind that
        does not say how), ``ValueError`` when the config does not fit its artifact."""
        raise NotReplayableError(f"the {self.kind!r} router kind has no offline replay")


@dataclass(frozen=True)
class RouterContext:
    """What building a router may use: the gateway's micro-``batcher`` of prompt embeddings (and so its
    embedder), its ``backends`` by name, and its ``redis_url`` (None: state stays in memory), where a
    paced router keeps the state its replicas share."""

    batcher: EmbeddingBatcher
    backends: dict[str, Backend]
    redis_url: str | None = None

    @property
    def tracer(self) -> Tracer | None:
        """The gateway's tracer, which its batcher holds (None: untraced; ``routeyard.gateway.tracing``)."""
        return self.batcher.tracer


RouterKind = ConfiguredKind[RouterConfig, RouterContext, Router]
"""A kind of router (the record ``routeyard.registry.ConfiguredKind`` describes)."""


ROUTER_KINDS: Registry[RouterKind] = Registry("router", __name__)
"""Every router kind, by name."""


def build_router(config: RouterConfig, context: RouterContext) -> Router:
    """The router ``config`` describes, built by the kind whose config class is exactly ``type(config)``.

    Raises ``routeyard.registry.UnknownKindError`` when no registered kind has that config class, and
    ``ValueError`` when the kind cannot build it.
    """
    kind = next((k for k in ROUTER_KINDS if k.config is type(config)), None)
    if kind is None:
        raise UnknownKindError(f"no router kind is configured by {type(config).__name__}")
    return kind.build(config, context)
