"""What a request's ``model`` can name: a backend, a router, or :data:`AUTO_MODEL` for the default router.

The :class:`ModelCatalog` is filled as the gateway starts: backends when it starts serving, routers once
their predictors are loaded (``router_names`` lists them from the start, so a request naming one that is
still loading is told so, not that it does not exist). ``GET /v1/models`` lists it; the request
lifecycle (``routeyard.gateway.request_lifecycle``) resolves ``model`` against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.errors import InvalidRequestError, ModelNotFoundError
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

    def resolve(self, model: str) -> tuple[str, float | None]:
        """(backend or router name, willingness to pay from a ``-<w>`` suffix); raises ModelNotFoundError."""
        if model == AUTO_MODEL and self.default_router:
            return self.default_router, None
        if model in self.backends or model in self.router_names:
            return model, None
        # the longest router name that is a prefix: "router-knn-1e-3" is router-knn at w = 1e-3
        prefix = max((r for r in self.router_names if model.startswith(r + "-")), key=len, default=None)
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
