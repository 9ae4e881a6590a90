"""What a request's ``model`` can name: a backend, a router, or :data:`AUTO_MODEL` for the default router.

The :class:`ModelCatalog` is filled as the gateway starts: backends when it starts serving, routers once
their predictors are loaded (``router_names`` lists them from the start, so a request naming one that is
still loading is told so, not that it does not exist). ``GET /v1/models`` lists it; the request
lifecycle (``routeyard.gateway.request_lifecycle``) resolves ``model`` against it.

The routing part (the loaded routers, the configured router names and the default router) is one
immutable :class:`RouterSet` held by one reference: :meth:`ModelCatalog.install` replaces it with a single
assignment on the event loop (at start-up, and by a hot reload, ``routeyard.gateway.policy_reload``). A
request that already holds a router finishes on it; one that resolves afterwards sees only the new set,
never a mix of both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.errors import InvalidRequestError, ModelNotFoundError
from routeyard.gateway.router import Router

AUTO_MODEL = "auto"
"""The ``model`` that selects the default router (when one is configured)."""


@dataclass(frozen=True)
class RouterSet:
    """The routers a catalog serves: ``routers`` loaded (by name), ``names`` every configured router's,
    loaded or not, and ``default`` the router (or backend) ``auto`` selects."""

    routers: Mapping[str, Router] = field(default_factory=lambda: MappingProxyType({}))
    names: frozenset[str] = frozenset()
    default: str | None = None


class ModelCatalog:
    """Backends by name and the current :class:`RouterSet` (see the module docstring)."""

    def __init__(
        self,
        backends: dict[str, Backend] | None = None,
        router_names: Iterable[str] = (),
        default_router: str | None = None,
    ) -> None:
        self.backends: dict[str, Backend] = backends if backends is not None else {}
        self.router_set = RouterSet(names=frozenset(router_names), default=default_router)

    @property
    def routers(self) -> Mapping[str, Router]:
        """The loaded routers by name (read-only)."""
        return self.router_set.routers

    @property
    def router_names(self) -> frozenset[str]:
        """Every configured router's name, loaded or not."""
        return self.router_set.names

    @property
    def default_router(self) -> str | None:
        return self.router_set.default

    def install(self, routers: Mapping[str, Router], default_router: str | None) -> None:
        """Serve ``routers`` (all loaded) from now on, ``auto`` selecting ``default_router``: one reference
        assignment, so every resolution sees either the old set or this one."""
        self.router_set = RouterSet(MappingProxyType(dict(routers)), frozenset(routers), default_router)

    def resolve(self, model: str) -> tuple[str, float | None]:
        """(backend or router name, willingness to pay from a ``-<w>`` suffix); raises ModelNotFoundError."""
        routing = self.router_set  # read once: a reload between two reads cannot mix two sets
        if model == AUTO_MODEL and routing.default:
            return routing.default, None
        if model in self.backends or model in routing.names:
            return model, None
        # the longest router name that is a prefix: "router-knn-1e-3" is router-knn at w = 1e-3
        prefix = max((r for r in routing.names if model.startswith(r + "-")), key=len, default=None)
        if prefix is None:
            raise ModelNotFoundError(
                f"model {model!r} is neither a backend nor a router; see GET /v1/models", param="model"
            )
        try:
            wtp = float(model[len(prefix) + 1 :])
        except ValueError:
            wtp = math.nan
        if not wtp >= 0.0:
            raise InvalidRequestError(
                f"model {model}: the suffix after {prefix}- must be a willingness to pay ≥ 0",
                param="model",
                code="invalid_willingness_to_pay",
            )
        return prefix, wtp
