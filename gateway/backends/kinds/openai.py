"""An OpenAI-compatible upstream over HTTP, through the gateway's one shared ``httpx.AsyncClient``.

The shared client (:func:`pooled_client`) speaks httpx's API over aiohttp's connection pool
(``httpx-aiohttp``): httpcore's own pool spends twice the CPU per request at 16 concurrent connections,
which halved the gateway's throughput (benchmarks/RESULTS.md). That adapter maps only some aiohttp
errors to httpx's; the rest (``aiohttp.ClientResponseError`` for bytes that are not HTTP, …) are caught
here too. Every failure is translated here, where it enters, into ``gateway.errors`` (``raise … from``):

=====================================================  ==========================================
upstream                                               raised (HTTP status the client sees)
=====================================================  ==========================================
unreachable, refused, dropped before answering         ``UpstreamError`` (502), after retries
HTTP 408, 429, 5xx                                     ``UpstreamError`` (502), after retries
no answer within the read timeout                      ``UpstreamTimeoutError`` (504), no retry
bytes that are not HTTP; a body or chunk that is not   ``UpstreamError`` (502), no retry
an OpenAI completion of the right shape
HTTP 401, 403 (the gateway's credentials), 404 (its    ``UpstreamError`` (502, codes
model or path): the gateway's configuration is wrong   ``upstream_credentials_rejected``,
                                                       ``upstream_model_not_found``), no retry
any other 4xx (400, 413, 422, …): the request's fault  ``UpstreamRejectedError`` (that status)
=====================================================  ==========================================

Retries back off exponentially from 50 ms, up to ``retries`` times. Every ``UpstreamError`` but
``UpstreamRejectedError`` lets the gateway fall back to the next candidate and counts as a failure for
the backend's :class:`CircuitBreaker`, which refuses calls (``BackendUnavailableError``, 503) while open.

Upstream JSON is validated where it enters: a completion needs ``choices`` whose ``message`` is an object
(``content`` text, text parts or null); a stream chunk needs ``choices`` (absent means ``[]``) whose
``delta`` is an object; unknown fields pass through untouched. Upstream ``usage`` is believed only when
its token counts are plausible (:meth:`Usage.from_json`); otherwise it is estimated and flagged.

``complete`` never sends ``stream_options`` (OpenAI refuses it on a whole call). ``stream`` always asks
the upstream for usage (``stream_options.include_usage``; a ``stream_options`` that is not an object
counts as absent) and holds one chunk back so that the last carries ``usage`` and ``routeyard_cost_usd``.
When the client asked for ``include_usage``, the last chunk keeps OpenAI's shape (``choices: []`` and the
usage); when it did not, a trailing usage chunk without choices is merged into the chunk before it, so
every chunk the client sees has a choice. The upstream's key travels only in the Authorization header.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import aiohttp
import httpx
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ConfigDict

from routeyard.gateway.backends.backend import Price, Reply, Usage
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.errors import (
    BackendUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)
from routeyard.gateway.token_count import count_prompt_tokens, count_tokens

_Part = TypeVar("_Part", bytes, str)
_FIRST_BACKOFF_SECONDS = 0.05
_FREE = Price()
_DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_MISCONFIGURED = {  # status: (code, what the backend refused), for the operator, never naming the key
    401: ("upstream_credentials_rejected", "rejected the gateway's credentials"),
    403: ("upstream_credentials_rejected", "refused the gateway's credentials"),
    404: ("upstream_model_not_found", "does not know the gateway's model or path"),
}


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
        """The whole completion for ``body``; the reply's body always has a believable ``usage``."""
        request = {**body, "model": self.upstream_model, "stream": False}
        request.pop("stream_options", None)  # OpenAI answers 400 to it on a call that does not stream
        with self._breaker_verdict():
            response = await self._send(request)
            content, parts = bytearray(), response.aiter_bytes()
            try:
                while (part := await self._next(parts)) is not None:
                    content += part
            finally:
                await _close(response)
            payload = _completion(content, self.name)
        usage = Usage.from_json(payload.get("usage"))
        if usage is None:  # absent or unbelievable: ours replaces it
            usage = _estimated_usage(body, _answer_texts(payload))
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
        shaper = _StreamShaper(client_wants_usage=options.get("include_usage") is True)
        with self._breaker_verdict():
            response = await self._send(request)
            try:
                lines = response.aiter_lines()
                while (line := await self._next(lines)) is not None:
                    chunk = _sse_chunk(line, self.name)
                    if chunk is _DONE:
                        break
                    if chunk is not None:
                        for ready in shaper.add(chunk):
                            yield ready
                else:
                    raise UpstreamError(f"backend {self.name} cut its answer (no [DONE] before its end)")
            finally:
                await _close(response)
            if shaper.empty:
                raise UpstreamError(f"backend {self.name} sent an empty stream")
        usage = shaper.usage or _estimated_usage(body, [shaper.answer])
        for ready in shaper.finish(usage.as_json(), self.price.cost(usage)):
            yield ready

    @contextlib.contextmanager
    def _breaker_verdict(self) -> Iterator[None]:
        """Brackets one call for the breaker: refused while open (BackendUnavailableError), then a
        failure for an UpstreamError, a success when the block completes, no verdict otherwise (the
        request's own 4xx, a client that left)."""
        if not self.breaker.allows():
            raise BackendUnavailableError(f"backend {self.name} is cooling down after repeated failures")
        try:
            yield
        except UpstreamRejectedError:
            self.breaker.released()
            raise
        except UpstreamError:
            self.breaker.failed()
            raise
        except BaseException:
            self.breaker.released()
            raise
        self.breaker.succeeded()

    async def _send(self, request: dict[str, Any]) -> httpx.Response:
        """The upstream's 2xx response, its body still unread; raises UpstreamError (see the module
        docstring)."""
        error = UpstreamError(f"backend {self.name} is unreachable")
        cause: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                http_request = self._client.build_request(
                    "POST", self._url, json=request, headers=self._headers, timeout=self._timeout
                )
                response = await self._client.send(http_request, stream=True)
            except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:  # sent, unanswered in time: no retry
                raise UpstreamTimeoutError(f"backend {self.name} timed out") from exc
            except httpx.TransportError as exc:  # refused, dropped, connect timeout, …: retry
                error, cause = UpstreamError(f"backend {self.name} is unreachable"), exc
                continue
            except (httpx.HTTPError, aiohttp.ClientError, HttpProcessingError) as exc:  # not HTTP
                raise UpstreamError(
                    f"backend {self.name} sent a response that is not valid HTTP ({type(exc).__name__})"
                ) from exc
            if response.is_success:
                return response
            await _close(response)
            status = response.status_code
            if status in _MISCONFIGURED:
                code, what = _MISCONFIGURED[status]
                raise UpstreamError(
                    f"backend {self.name} {what} (HTTP {status}): check its configuration in the gateway",
                    code=code,
                )
            if not (status in (408, 429) or status >= 500):
                raise UpstreamRejectedError(
                    f"backend {self.name} rejected the request with HTTP {status}", status=status
                )
            error, cause = UpstreamError(f"backend {self.name} answered HTTP {status}"), None
        raise error from cause

    async def _next(self, parts: AsyncIterator[_Part]) -> _Part | None:
        """The next part of a response body (None at its end), awaited at most the read timeout; raises
        UpstreamError.

        aiohttp's own read timeout is not enough: after a malformed chunk of a chunked body, its C parser
        leaves the body's reader waiting forever, the timeout dropped (aiohttp 3.14)."""
        try:
            async with asyncio.timeout(self._timeout.read):
                return await anext(parts)
        except StopAsyncIteration:
            return None
        except (TimeoutError, httpx.ReadTimeout) as exc:
            raise UpstreamTimeoutError(f"backend {self.name} stalled mid-answer") from exc
        except (aiohttp.ClientResponseError, HttpProcessingError, httpx.DecodingError) as exc:
            raise UpstreamError(f"backend {self.name} sent an answer that is not valid HTTP") from exc
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"backend {self.name} cut its answer ({type(exc).__name__})") from exc


async def _close(response: httpx.Response) -> None:
    with contextlib.suppress(httpx.HTTPError, aiohttp.ClientError):  # nothing left to learn from it
        await response.aclose()


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


def _completion(content: bytes | bytearray, name: str) -> dict[str, Any]:
    """The upstream's completion JSON, checked for shape; raises UpstreamError."""
    try:
        payload = json.loads(content)
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
        chunk = json.loads(data)
        if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
            raise UpstreamError(f"backend {name} sent an error mid-stream")
        _Chunk.model_validate(chunk)
    except (ValueError, RecursionError) as exc:
        raise UpstreamError(f"backend {name} sent a malformed stream chunk") from exc
    assert isinstance(chunk, dict)  # validated
    chunk.setdefault("choices", [])
    return chunk


class _StreamShaper:
    """Passes chunks on one behind the upstream, so the last can carry usage and cost; gathers the
    answer's text and the upstream's usage (see the module docstring for the last chunk's shape)."""

    def __init__(self, *, client_wants_usage: bool) -> None:
        self.client_wants_usage = client_wants_usage
        self.usage: Usage | None = None
        self._pending: list[dict[str, Any]] = []  # not passed on yet: a chunk, then choice-less ones
        self._texts: list[str] = []

    @property
    def empty(self) -> bool:
        return not self._pending

    @property
    def answer(self) -> str:
        return "".join(self._texts)

    def add(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """Take the next upstream chunk; return the chunks now ready for the client."""
        usage = Usage.from_json(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        elif chunk.get("usage") is not None:
            del chunk["usage"]  # unbelievable: not for the client either
        self._texts += [_text((c.get("delta") or {}).get("content")) for c in chunk["choices"]]
        if chunk["choices"] or self.client_wants_usage:
            ready, self._pending = self._pending, [chunk]
            return ready
        self._pending.append(chunk)  # maybe the trailing usage chunk: held until something follows
        return []

    def finish(self, usage: dict[str, Any], cost_usd: float) -> list[dict[str, Any]]:
        """The chunks left, the last carrying ``usage`` and ``routeyard_cost_usd``."""
        pending = self._pending
        if not self.client_wants_usage and pending[0]["choices"]:
            # the choice-less chunks after the last chunk with a choice (the usage chunk) merge into it
            merged = {key: value for chunk in pending[1:] for key, value in chunk.items()}
            ready, last = [], {**merged, **pending[0]}
        elif self.client_wants_usage and pending[-1]["choices"]:  # no usage chunk came: OpenAI's shape
            ready, final = pending, pending[-1]
            last = {k: final[k] for k in ("id", "object", "created", "model") if k in final}
            last["choices"] = []
        else:
            ready, last = pending[:-1], pending[-1]
        return [*ready, {**last, "usage": usage, "routeyard_cost_usd": cost_usd}]


def _text(content: Any) -> str:
    """The text of a message's or delta's ``content``: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def _answer_texts(payload: dict[str, Any]) -> list[str]:
    return [_text(c["message"].get("content")) for c in payload["choices"]]


def _estimated_usage(body: dict[str, Any], answers: list[str]) -> Usage:
    messages = body.get("messages") or []
    turns = [_text(m.get("content")) for m in messages if isinstance(m, dict)]
    return Usage(count_prompt_tokens(turns), sum(count_tokens(a) for a in answers), estimated=True)
