"""What a request's ``model`` can name: a backend, a router, or :data:`AUTO_MODEL` for the default router.

The :class:`ModelCatalog` is filled as the gateway starts: backends when it starts serving, routers once
their predictors are loaded (``router_names`` lists them from the start, so a request naming one that is
still loading is told so, not that it does not exist). ``GET /v1/models`` lists it; the request
lifecycle (``routeyard.gateway.request_lifecycle``) resolves ``model`` against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.router import Router

AUTO_MODEL = "auto"
"""The ``model`` that selects the default router (when one is configured)."""


@dataclass
class ModelCatalog:
    """Backends and routers by name, the names of every configured router, and the default router."""

    backends: dict[str, Backend] = field(default_factory=dict)
    routers: dict[str, Router] = field(default_factory=dict)  # loaded
    router_names: set[str] = field(default_factory=set)  # configured, loaded or not
    default_router: str | None = None
