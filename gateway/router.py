"""The Router seam: turn a request's prompt into a ranked list of backends to try, with the reasons.

A :class:`Router` answers a :class:`Decision`: the backends to try, best first, and every
:class:`Candidate` it considered with its predictions. A router over a predictor makes an
:class:`Assessment` of the prompt first. The kinds of router (fixed, predictive, cascade) live in
``routeyard.gateway.routers``, one module each, registered in its ``ROUTER_KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from routeyard.arrays import BoolArray, FloatArray
from routeyard.gateway.wire import RoutingOptions

if TYPE_CHECKING:
    from routeyard.gateway.spend_pacing import PacingReading


@dataclass(frozen=True)
class Candidate:
    """A backend the router considered, with its predictions (``None`` for a fixed route)."""

    backend: str
    predicted_quality: float | None
    predicted_cost_usd: float | None
    allowed: bool


@dataclass(frozen=True)
class Decision:
    """A router's verdict: ``ranked`` backends, best first, and every candidate it looked at; where its
    ``willingness_to_pay`` came from (``willingness_to_pay_source``: ``request``, ``pacing`` or
    ``config``; None when it used none)."""

    router: str
    willingness_to_pay: float | None
    ranked: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    routing_seconds: float
    willingness_to_pay_source: str | None = None

    @property
    def routed(self) -> bool:
        """Whether a router decided (False when ``model`` named a backend directly)."""
        return bool(self.candidates)

    def candidate(self, backend: str) -> Candidate | None:
        """The candidate ``backend``, or None when the router did not consider it."""
        return next((c for c in self.candidates if c.backend == backend), None)


@dataclass(frozen=True)
class Assessment:
    """A predictor's view of one prompt: (m,) predicted quality and $ cost per backend, the (m,) mask of
    backends the request allows, the same as :class:`Candidate` objects, and the seconds it took."""

    quality: FloatArray
    cost: FloatArray
    allowed: BoolArray
    candidates: tuple[Candidate, ...]
    seconds: float


class Router(Protocol):
    """Ranks backends for prompts; ``name`` is what clients select it by (``model``)."""

    name: str

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """Rank the ``available`` backends for a prompt; raises NoBackendFitsError when none is allowed."""
        ...


class PacedRouter(Protocol):
    """A router whose willingness to pay follows its spend (``routeyard.gateway.spend_pacing``): the
    request lifecycle tells it the $ of each request it decided, once the request is logged. (Not
    runtime-checkable: the lifecycle looks for ``observe_spend`` with getattr, which costs ≈ 0.1 µs a
    request against ≈ 20 µs for isinstance on a protocol.)"""

    name: str

    def observe_spend(self, cost_usd: float) -> None:
        """Count ``cost_usd`` $ spent by a request this router decided; returns at once, never raises."""
        ...

    def pacing(self) -> PacingReading:
        """Its current w, recent spend rate, target and store failures (for metrics)."""
        ...
