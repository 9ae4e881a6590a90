"""The ``openai`` backend kind: any OpenAI-compatible server (``POST {base_url}/chat/completions``).

It speaks the OpenAI wire on an :class:`~routeyard.gateway.backends.http_transport.HttpTransport`, which
retries, bounds each call, keeps the circuit breaker and translates every failure of the exchange (its
module docstring has the table), over a connection pool of the backend's own (at most ``max_connections``
open: a hung upstream holds only those). The upstream's key travels only in the Authorization header.

Each call must end within ``total_timeout_seconds`` (default 300) of its request, retries included, or it
ends with ``UpstreamTimeoutError`` (504; mid-stream, an error chunk), a failure for the breaker and the
fallback like a read timeout: an upstream that trickles a byte now and then, never letting the read
timeout (``timeout_seconds``, per part of the body) fire, is ended too. A stream is bounded as a whole,
however slowly the client reads it: set the deadline above the longest answer a backend may stream. A
whole completion's body may be at most ``max_response_bytes`` (default 16 MiB) and a stream's line at most
``max_sse_line_bytes`` (default 1 MiB), else ``UpstreamError`` (502, code
``upstream_response_too_large``), not retried. A stream has no total size limit: its chunks pass on as they
come, and only the text of its answer is kept (to estimate usage the upstream does not report), which the
deadline bounds.

Upstream JSON is validated where it enters: a completion needs ``choices`` whose ``message`` is an object
(``content`` text, text parts or null); a stream chunk needs ``choices`` (absent means ``[]``) whose
``delta`` is an object; unknown fields pass through untouched. A body or chunk of another shape, an
``error`` event mid-stream, a stream without ``[DONE]`` or without any chunk is an ``UpstreamError``
(502), not retried. Upstream ``usage`` is believed only when its token counts are plausible
(:meth:`Usage.from_json`); otherwise it is estimated and flagged.

``complete`` never sends ``stream_options`` (OpenAI refuses it on a whole call). ``stream`` always asks
the upstream for usage (``stream_options.include_usage``; a ``stream_options`` that is not an object
counts as absent) and shapes the chunks with a :class:`StreamShaper`, so that the last carries ``usage``
and ``routeyard_cost_usd`` whether or not the client asked for ``include_usage``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from routeyard.gateway.backends.backend import Price, Reply, Usage
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.http_backend_config import HttpBackendConfig, estimated_usage
from routeyard.gateway.backends.http_transport import (
    DEFAULT_LIMITS,
    DEFAULT_TIMEOUT,
    HttpTransport,
    UpstreamLimits,
)
from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendContext, BackendKind
from routeyard.gateway.backends.stream_shaper import StreamShaper
from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.fast_json import loads_lenient
from routeyard.gateway.wire import content_text

_FREE = Price()


class OpenAiBackendConfig(HttpBackendConfig):
    """An OpenAI-compatible server at ``base_url`` (``…/v1``) serving ``model``.

    ``api_key_env`` names the environment variable holding its key (none: no Authorization header); the
    other fields are :class:`HttpBackendConfig`'s (the byte limits are described in the module docstring).
    """

    kind: Literal["openai"] = "openai"
    base_url: str | None = None

    def problems(self) -> list[str]:
        """A missing or non-HTTP ``base_url``; an ``api_key_env`` that is unset."""
        if not self.base_url:
            return ["base_url is required for an openai backend", *self.http_problems("http://")]
        return self.http_problems(self.base_url)


class OpenAiBackend:
    """A backend at ``base_url`` (``…/v1``) serving ``upstream_model`` (see the module docstring).

    ``pool`` is the backend's own connection pool; ``timeout``, ``limits``, ``retries`` and ``breaker`` are
    the :class:`HttpTransport`'s.
    """

    def __init__(
        self,
        name: str,
        pool: httpx.AsyncBaseTransport,
        *,
        base_url: str,
        upstream_model: str,
        api_key: str | None = None,
        price: Price = _FREE,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: UpstreamLimits = DEFAULT_LIMITS,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.upstream_model = upstream_model
        self.price = price
        self._transport = HttpTransport(
            name,
            pool,
            url=base_url.rstrip("/") + "/chat/completions",
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=timeout,
            limits=limits,
            retries=retries,
            breaker=breaker,
        )
        self.breaker = self._transport.breaker

    async def complete(self, body: dict[str, Any]) -> Reply:
        """The whole completion for ``body``; the reply's body always has a believable ``usage``."""
        request = {**body, "model": self.upstream_model, "stream": False}
        request.pop("stream_options", None)  # OpenAI answers 400 to it on a call that does not stream
        with self._transport.breaker_verdict():
            response = await self._transport.post(request)
            payload = _completion(await self._transport.read_body(response), self.name)
        usage = Usage.from_json(payload.get("usage"))
        if usage is None:  # absent or unbelievable: ours replaces it
            usage = estimated_usage(body, _answer_texts(payload))
            payload["usage"] = usage.as_json()
        return Reply(body=payload, usage=usage, cost_usd=self.price.cost(usage))

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The completion for ``body`` as chunks (see the module docstring for the last one's shape)."""
        options = body.get("stream_options")
        options = options if isinstance(options, dict) else {}
        request = {
            **body,
            "model": self.upstream_model,
            "stream": True,
            "stream_options": {**options, "include_usage": True},
        }
        shaper = StreamShaper(client_wants_usage=options.get("include_usage") is True)
        with self._transport.breaker_verdict():
            response = await self._transport.post(request)
            async with contextlib.aclosing(self._transport.lines(response)) as lines:
                async for line in lines:
                    chunk = _sse_chunk(line, self.name)
                    if chunk is _DONE:
                        break
                    if chunk is not None:
                        for ready in shaper.add(chunk):
                            yield ready
                else:
                    raise UpstreamError(f"backend {self.name} cut its answer (no [DONE] before its end)")
            if shaper.empty:
                raise UpstreamError(f"backend {self.name} sent an empty stream")
        usage = shaper.usage or estimated_usage(body, [shaper.answer])
        for ready in shaper.finish(usage.as_json(), self.price.cost(usage)):
            yield ready


def _build(config: OpenAiBackendConfig, context: BackendContext) -> OpenAiBackend:
    if not config.base_url:
        raise ValueError(f"backend {config.name}: base_url is required for an openai backend")
    return OpenAiBackend(
        config.name,
        base_url=config.base_url,
        upstream_model=config.upstream_model,
        api_key=config.api_key(),
        price=Price(config.input_usd_per_million, config.output_usd_per_million),
        **config.transport_options(context),
    )


BACKEND_KINDS.register(BackendKind(name="openai", config=OpenAiBackendConfig, build=_build))


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


_Content = str | list[dict[str, Any]] | None  # text, content parts, or none (tool calls)


class _Message(_Wire):
    role: str | None = None
    content: _Content = None
    tool_calls: list[dict[str, Any]] | None = None


class _Choice(_Wire):
    index: int = 0
    message: _Message
    finish_reason: str | None = None


class _Completion(_Wire):
    choices: list[_Choice]


class _ChunkChoice(_Wire):
    index: int = 0
    delta: _Message | None = None
    finish_reason: str | None = None


class _Chunk(_Wire):
    choices: list[_ChunkChoice] = []


def _completion(content: bytes, name: str) -> dict[str, Any]:
    """The upstream's completion JSON, checked for shape; raises UpstreamError."""
    try:
        payload = loads_lenient(content)
        _Completion.model_validate(payload)
    except (ValueError, RecursionError) as exc:  # ValidationError and UnicodeDecodeError are ValueErrors
        raise UpstreamError(f"backend {name} returned a malformed completion") from exc
    assert isinstance(payload, dict)  # validated
    return payload


_DONE: dict[str, Any] = {}  # the end of an SSE stream


def _sse_chunk(line: str, name: str) -> dict[str, Any] | None:
    """The chunk on an SSE line, None for a line without ``data:``, :data:`_DONE` for ``[DONE]``;
    raises UpstreamError."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    return _DONE if data == "[DONE]" else _chunk(data, name)


def _chunk(data: str, name: str) -> dict[str, Any]:
    try:
        chunk = loads_lenient(data)
        if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
            raise UpstreamError(f"backend {name} sent an error mid-stream")
        _Chunk.model_validate(chunk)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(f"backend {name} sent a malformed stream chunk") from exc
    assert isinstance(chunk, dict)  # validated
    chunk.setdefault("choices", [])
    return chunk


def _answer_texts(payload: dict[str, Any]) -> list[str]:
    return [content_text(c["message"].get("content")) for c in payload["choices"]]
