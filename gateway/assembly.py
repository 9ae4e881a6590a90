"""Building a gateway's backends and routers from its settings, each by its kind's registry entry.

Backends are cheap to build (replay tables load in well under a second). Routers load predictor
artifacts and need the embedder, which takes seconds, so the app loads them after it starts serving and
reports ready (``/readyz``) once they are in.
"""

from __future__ import annotations

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendContext
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.router import Router
from routeyard.gateway.routers import RouterContext, build_router
from routeyard.gateway.settings import ConfigError, GatewaySettings
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.traced_backend import traced_backends


def build_backends(
    settings: GatewaySettings, pools: ConnectionPools, tracer: Tracer | None = None
) -> dict[str, Backend]:
    """Every configured backend by name; an HTTP one gets a connection pool of its own from ``pools``
    (which closes them all). With a ``tracer`` each call is traced (``routeyard.gateway.tracing``:
    the backend's kind is its ``gen_ai.provider.name``); without, the backends are the kinds' own."""
    context = BackendContext(pools, settings.breaker_failures, settings.breaker_cooldown_seconds)
    backends = {
        config.name: BACKEND_KINDS.get(config.kind).build(config, context) for config in settings.backends
    }
    return traced_backends(backends, settings.backends, tracer)


def load_routers(
    settings: GatewaySettings, batcher: EmbeddingBatcher, backends: dict[str, Backend]
) -> dict[str, Router]:
    """Every configured router by name, artifacts loaded and checked; raises ConfigError listing failures.

    ``backends`` are the gateway's (an LLM judge grades through one of them).
    """
    context = RouterContext(batcher, backends, settings.redis_url)
    routers: dict[str, Router] = {}
    problems: list[str] = []
    for config in settings.routers:
        try:
            routers[config.name] = build_router(config, context)
        except ValueError as exc:  # ArtifactError, JudgeArtifactError, a kind mismatch, no backend in common
            problems.append(f"router {config.name}: {exc}")
    if problems:
        raise ConfigError("routers", problems)
    return routers
