"""Backend kinds: one module here per kind of :class:`~routeyard.gateway.backends.backend.Backend`.

A kind module registers a :class:`BackendKind` in :data:`BACKEND_KINDS` when it is imported: its name
(what a backend's ``kind`` says in the gateway's settings), its config model (a :class:`BackendConfig`
whose ``kind`` is a ``Literal`` of that name) and how to build the backend from a config and the
gateway's :class:`BackendContext`. A new kind is one new module in this package (or in another
distribution, through the entry-point group ``routeyard.backend``); nothing else changes. A kind that
speaks HTTP builds on :class:`~routeyard.gateway.backends.http_transport.HttpTransport`, which brings
retries, a deadline and size limits per call, the circuit breaker and error translation, over a connection
pool of the backend's own (``context.pools.new_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.capabilities import Capabilities
from routeyard.registry import ConfiguredKind, KindConfig, Registry


class BackendConfig(KindConfig):
    """What every backend's configuration has: its ``name`` (what routers and clients call it by) and
    its ``capabilities`` (what requests it can serve; by default any, see ``routeyard.gateway.capabilities``).

    Each kind subclasses it with its own fields; unknown fields are errors.
    """

    name: str = Field(min_length=1)
    capabilities: Capabilities = Field(default_factory=Capabilities)

    def problems(self) -> list[str]:
        """What is wrong that validation cannot see (an unset environment variable, a missing file),
        one sentence each without the backend's name; empty when nothing is. This base finds nothing."""
        return []


@dataclass(frozen=True)
class BackendContext:
    """What a gateway gives every backend it builds.

    Attributes:
        pools: the gateway's HTTP connection pools: an HTTP backend takes one of its own
            (``pools.new_pool``), closed when the gateway stops.
        breaker_failures: consecutive failed calls that open a backend's circuit breaker, ≥ 1.
        breaker_cooldown_seconds: seconds an open breaker refuses calls, > 0.
    """

    pools: ConnectionPools
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 30.0

    def new_breaker(self) -> CircuitBreaker:
        """A new circuit breaker with these settings (each backend has its own)."""
        return CircuitBreaker(self.breaker_failures, self.breaker_cooldown_seconds)


BackendKind = ConfiguredKind[BackendConfig, BackendContext, Backend]
"""A kind of backend (the record ``routeyard.registry.ConfiguredKind`` describes)."""


BACKEND_KINDS: Registry[BackendKind] = Registry("backend", __name__)
"""Every backend kind, by name."""
