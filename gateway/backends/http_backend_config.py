"""What every backend kind that calls an HTTP upstream shares: its config fields, its transport's
settings, and the usage estimated when the upstream reports none believable.

:class:`HttpBackendConfig` is the base of such a kind's config (``openai``, ``anthropic``): the upstream
``model``, the key's variable ``api_key_env``, the input and output prices, the timeouts, ``retries``,
``max_connections`` and the byte limits (``routeyard.gateway.backends.http_transport``).
:meth:`HttpBackendConfig.transport_options` turns them into the transport's keyword arguments;
:func:`estimated_usage` counts a request's and its answers' tokens.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from pydantic import Field

from routeyard.gateway.backends.backend import Usage
from routeyard.gateway.backends.connection_pools import DEFAULT_MAX_CONNECTIONS
from routeyard.gateway.backends.http_transport import DEFAULT_LIMITS, UpstreamLimits
from routeyard.gateway.backends.kinds import BackendConfig, BackendContext
from routeyard.gateway.token_count import count_prompt_tokens, count_tokens
from routeyard.gateway.wire import content_text


class HttpBackendConfig(BackendConfig):
    """An upstream over HTTP serving ``model`` (the backend's name when unset).

    ``api_key_env`` names the environment variable holding its key. Prices are $ per million input /
    output tokens; ``retries`` are extra attempts after a retryable failure. ``timeout_seconds`` bounds
    each read (and the wait for one of the ``max_connections``), ``total_timeout_seconds`` the whole
    call; ``max_response_bytes`` and ``max_sse_line_bytes`` cap what the upstream may send.
    """

    model: str | None = None
    api_key_env: str | None = None
    input_usd_per_million: float = Field(default=0.0, ge=0.0)
    output_usd_per_million: float = Field(default=0.0, ge=0.0)
    timeout_seconds: float = Field(default=60.0, gt=0.0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0.0)
    total_timeout_seconds: float = Field(default=300.0, gt=0.0)
    retries: int = Field(default=2, ge=0, le=10)
    max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1)
    max_response_bytes: int = Field(default=DEFAULT_LIMITS.max_response_bytes, ge=1)
    max_sse_line_bytes: int = Field(default=DEFAULT_LIMITS.max_line_bytes, ge=1)

    @property
    def upstream_model(self) -> str:
        """The model id sent upstream (``model``, or the backend's name)."""
        return self.model or self.name

    def api_key(self) -> str | None:
        """The key, from the variable ``api_key_env`` names (None without one)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def http_problems(self, base_url: str) -> list[str]:
        """A ``base_url`` that is not HTTP(S); an ``api_key_env`` that is unset."""
        problems = []
        if not base_url.startswith(("http://", "https://")):
            problems.append("base_url must start with http:// or https://")
        if self.api_key_env and self.api_key_env not in os.environ:
            problems.append(f"environment variable {self.api_key_env} (api_key_env) is unset")
        return problems

    def transport_options(self, context: BackendContext) -> dict[str, Any]:
        """The HTTP transport's ``pool``, ``timeout``, ``limits``, ``retries`` and ``breaker`` for this
        backend (a connection pool and a circuit breaker of its own)."""
        return {
            "pool": context.pools.new_pool(self.max_connections),
            "timeout": httpx.Timeout(self.timeout_seconds, connect=self.connect_timeout_seconds),
            "limits": UpstreamLimits(
                self.total_timeout_seconds, self.max_response_bytes, self.max_sse_line_bytes
            ),
            "retries": self.retries,
            "breaker": context.new_breaker(),
        }


def estimated_usage(body: dict[str, Any], answers: list[str]) -> Usage:
    """The tokens of ``body``'s messages and of ``answers``, counted here (``estimated``)."""
    messages = body.get("messages") or []
    turns = [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    return Usage(count_prompt_tokens(turns), sum(count_tokens(a) for a in answers), estimated=True)
