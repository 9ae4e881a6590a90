"""An OpenAI-compatible upstream over HTTP, through the gateway's one shared ``httpx.AsyncClient``.

The shared client (:func:`pooled_client`) speaks httpx's API over aiohttp's connection pool
(``httpx-aiohttp``): httpcore's own pool spends twice the CPU per request at 16 concurrent connections,
which halved the gateway's throughput (benchmarks/RESULTS.md).

Retries (with exponential backoff from 50 ms) on connection failures, 429 and 5xx, up to ``retries``
times; a 4xx is the request's fault and is returned at once. A per-backend :class:`CircuitBreaker` skips
an upstream that keeps failing. Streams ask the upstream for usage (``stream_options.include_usage``).
httpx errors are translated here, where they enter, into ``gateway.errors``; the upstream's key travels
only in the Authorization header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from gateway.backends.backend import Price, Reply, Usage
from gateway.backends.circuit_breaker import CircuitBreaker
from gateway.errors import (
    BackendUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from gateway.token_count import count_prompt_tokens, count_tokens

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_FIRST_BACKOFF_SECONDS = 0.05
_FREE = Price()
_DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def pooled_client(max_connections: int = 512) -> httpx.AsyncClient:
    """The client every :class:`HttpBackend` of a gateway shares (see the module docstring)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=128)
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits))


class HttpBackend:
    """A backend at ``base_url`` (``…/v1``) serving ``upstream_model`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        upstream_model: str,
        api_key: str | None = None,
        price: Price = _FREE,
        timeout: httpx.Timeout = _DEFAULT_TIMEOUT,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.upstream_model = upstream_model
        self.price = price
        self.breaker = breaker or CircuitBreaker()
        self._client = client
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._retries = retries

    async def complete(self, body: dict[str, Any]) -> Reply:
        response = await self._send({**body, "model": self.upstream_model, "stream": False}, stream=False)
        try:
            payload = response.json()
            choices = payload["choices"]
            if not isinstance(choices, list):
                raise TypeError("choices is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            self.breaker.failed()
            raise UpstreamError(f"backend {self.name} returned a malformed completion") from exc
        self.breaker.succeeded()
        usage = _reported_usage(payload) or _estimated_usage(body, _answer_texts(payload))
        return Reply(body=payload, usage=usage, cost_usd=self.price.cost(usage))

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        request = {
            **body,
            "model": self.upstream_model,
            "stream": True,
            "stream_options": {**body.get("stream_options", {}), "include_usage": True},
        }
        response = await self._send(request, stream=True)
        answer: list[str] = []
        usage: Usage | None = None
        last: dict[str, Any] | None = None
        try:
            async for chunk in _sse_chunks(response, self.name):
                answer += [c.get("delta", {}).get("content") or "" for c in chunk.get("choices", [])]
                usage = _reported_usage(chunk) or usage
                if last is not None:
                    yield last
                last = chunk
        except httpx.ReadTimeout as exc:
            self.breaker.failed()
            raise UpstreamTimeoutError(f"backend {self.name} stalled mid-stream") from exc
        except httpx.HTTPError as exc:
            self.breaker.failed()
            raise UpstreamError(f"backend {self.name} cut the stream ({type(exc).__name__})") from exc
        finally:
            await response.aclose()
        if last is None:
            self.breaker.failed()
            raise UpstreamError(f"backend {self.name} sent an empty stream")
        self.breaker.succeeded()
        usage = usage or _estimated_usage(body, ["".join(answer)])
        yield {**last, "usage": usage.as_json(), "routeyard_cost_usd": self.price.cost(usage)}

    async def _send(self, request: dict[str, Any], *, stream: bool) -> httpx.Response:
        """The upstream's 2xx response (for streams, with the body still unread); raises UpstreamError."""
        if not self.breaker.allows():
            raise BackendUnavailableError(f"backend {self.name} is cooling down after repeated failures")
        for attempt in range(self._retries + 1):
            retry_after = _FIRST_BACKOFF_SECONDS * 2**attempt
            try:
                http_request = self._client.build_request(
                    "POST", self._url, json=request, headers=self._headers, timeout=self._timeout
                )
                response = await self._client.send(http_request, stream=stream)
            except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:  # sent, unanswered in time: no retry
                self.breaker.failed()
                raise UpstreamTimeoutError(f"backend {self.name} timed out") from exc
            except httpx.TransportError:  # nothing was sent (refused, connect timeout, …): retry
                error: UpstreamError = UpstreamError(f"backend {self.name} is unreachable")
            else:
                if response.is_success:
                    return response
                await response.aclose()
                if response.status_code not in _RETRY_STATUSES:
                    raise UpstreamRejectedError(
                        f"backend {self.name} rejected the request with HTTP {response.status_code}",
                        status=response.status_code,
                    )
                error = UpstreamError(f"backend {self.name} answered HTTP {response.status_code}")
            if attempt < self._retries:
                await asyncio.sleep(retry_after)
        self.breaker.failed()
        raise error


async def _sse_chunks(response: httpx.Response, name: str) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects of an SSE stream's ``data:`` lines, up to ``[DONE]``."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise httpx.DecodingError(f"backend {name} sent a malformed stream chunk") from exc
        if not isinstance(chunk, dict):
            raise httpx.DecodingError(f"backend {name} sent a stream chunk that is not an object")
        yield chunk
    raise httpx.RemoteProtocolError("stream ended without [DONE]")


def _reported_usage(payload: dict[str, Any]) -> Usage | None:
    return Usage.from_json(payload.get("usage"))


def _answer_texts(payload: dict[str, Any]) -> list[str]:
    return [str((c.get("message") or {}).get("content") or "") for c in payload.get("choices", [])]


def _estimated_usage(body: dict[str, Any], answers: list[str]) -> Usage:
    turns = [str(m.get("content") or "") for m in body.get("messages", [])]
    return Usage(count_prompt_tokens(turns), sum(count_tokens(a) for a in answers), estimated=True)
