"""What every HTTP-speaking backend shares: retries, the circuit breaker and error translation.

A backend kind speaks its own wire (OpenAI chat completions, Anthropic messages, …) *on* an
:class:`HttpTransport`, which posts its JSON, retries, keeps the breaker and translates every failure of
the exchange, where it enters, into ``routeyard.gateway.errors`` (``raise … from``):

=====================================================  ==========================================
upstream                                               raised (HTTP status the client sees)
=====================================================  ==========================================
unreachable, refused, dropped before answering         ``UpstreamError`` (502), after retries
HTTP 408, 429, 5xx                                     ``UpstreamError`` (502), after retries
no answer within the read timeout, before or between   ``UpstreamTimeoutError`` (504), no retry
the parts of its body
bytes that are not HTTP; a body cut short              ``UpstreamError`` (502), no retry
HTTP 401, 403 (the gateway's credentials), 404 (its    ``UpstreamError`` (502, codes
model or path): the gateway's configuration is wrong   ``upstream_credentials_rejected``,
                                                       ``upstream_model_not_found``), no retry
any other 4xx (400, 413, 422, …): the request's fault  ``UpstreamRejectedError`` (that status)
=====================================================  ==========================================

A backend adds one row of its own: a 2xx body that is not its wire's JSON of the right shape is an
``UpstreamError`` (502), no retry. Retries back off exponentially from 50 ms, up to ``retries`` times.
Every ``UpstreamError`` but ``UpstreamRejectedError`` lets the gateway fall back to the next candidate and,
raised inside :meth:`HttpTransport.breaker_verdict`, counts as a failure for the backend's
:class:`CircuitBreaker`, which refuses calls (``BackendUnavailableError``, 503) while open.

The shared pool (:func:`pooled_transport`) is httpx's transport API over aiohttp's connection pool
(``httpx-aiohttp``): httpcore's own pool spends twice the CPU per request at 16 concurrent connections,
which halved the gateway's throughput (benchmarks/RESULTS.md). Requests go to the transport directly, not
through an ``httpx.AsyncClient``: the client's redirects, cookie jar and per-request log line cost
≈ 0.25 ms a call and a gateway needs none of them (issue 14's profile). The body is serialised with
orjson. That adapter maps only some aiohttp errors to httpx's; the rest (``aiohttp.ClientResponseError``
for bytes that are not HTTP, …) are caught here too. Credentials travel only in the headers the backend
gives, and no message here names them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp
import httpx
import orjson
from aiohttp.http_exceptions import HttpProcessingError
from httpx_aiohttp import AiohttpTransport

from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.errors import (
    BackendUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)

_Part = TypeVar("_Part", bytes, str)
_FIRST_BACKOFF_SECONDS = 0.05
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
"""A backend's timeouts unless configured: 60 s to read (each part of the body), 5 s to connect."""
_MISCONFIGURED = {  # status: (code, what the backend refused), for the operator, never naming the key
    401: ("upstream_credentials_rejected", "rejected the gateway's credentials"),
    403: ("upstream_credentials_rejected", "refused the gateway's credentials"),
    404: ("upstream_model_not_found", "does not know the gateway's model or path"),
}


def pooled_transport(max_connections: int = 512) -> httpx.AsyncBaseTransport:
    """The connection pool every HTTP backend of a gateway shares (see the module docstring); close it
    with ``async with`` or ``aclose()``."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=128)
    return AiohttpTransport(limits=limits)


class HttpTransport:
    """JSON POSTs to ``url`` for the backend called ``name`` (see the module docstring).

    Args:
        name: the backend's name, in every error message.
        pool: the gateway's shared connection pool (:func:`pooled_transport`).
        url: the endpoint every :meth:`post` goes to.
        headers: sent with every request (the credentials); never in a message.
        timeout: connect, read (per part of a body) and write timeouts.
        retries: extra attempts after a retryable failure, ≥ 0.
        breaker: the backend's breaker (default: a new one).
    """

    def __init__(
        self,
        name: str,
        pool: httpx.AsyncBaseTransport,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.breaker = breaker or CircuitBreaker()
        self._pool = pool
        self._url = httpx.URL(url)  # parsed once: parsing took ≈ 4 % of a passthrough's CPU
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._timeout = timeout
        self._timeout_extension = {"timeout": timeout.as_dict()}
        self._retries = retries

    @contextlib.contextmanager
    def breaker_verdict(self) -> Iterator[None]:
        """Brackets one call for the breaker: refused while open (``BackendUnavailableError``), then a
        failure for an ``UpstreamError``, a success when the block completes, no verdict otherwise (an
        ``UpstreamRejectedError``: the request's own fault; a client that left)."""
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

    async def post(self, payload: Any) -> httpx.Response:
        """The upstream's 2xx response to ``payload`` posted as JSON, its body still unread (the caller
        reads it with :meth:`read_body` or :meth:`lines`, or closes it with :func:`close_response`); raises
        ``UpstreamError`` and its subclasses after retries (see the module docstring)."""
        failure: _RetryableError | None = None  # no error built up front: the hot path needs none
        for attempt in range(self._retries + 1):
            if attempt:
                await asyncio.sleep(_FIRST_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = await self._attempt(payload)
            except _RetryableError as retryable:
                failure = retryable
                continue
            return response
        assert failure is not None  # every attempt (at least one) failed
        raise failure.error from failure.__cause__

    async def _attempt(self, payload: Any) -> httpx.Response:
        """One POST: its 2xx response; raises ``_RetryableError`` for what may pass on a retry."""
        try:
            request = httpx.Request(
                "POST",
                self._url,
                content=orjson.dumps(payload),
                headers=self._headers,
                extensions=self._timeout_extension,
            )
            response = await self._pool.handle_async_request(request)
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:  # sent, unanswered in time: no retry
            raise UpstreamTimeoutError(f"backend {self.name} timed out") from exc
        except httpx.TransportError as exc:  # refused, dropped, connect timeout, …: retry
            raise _RetryableError(UpstreamError(f"backend {self.name} is unreachable")) from exc
        except (httpx.HTTPError, aiohttp.ClientError, HttpProcessingError) as exc:  # not HTTP
            raise UpstreamError(
                f"backend {self.name} sent a response that is not valid HTTP ({type(exc).__name__})"
            ) from exc
        if response.is_success:
            return response
        await close_response(response)
        raise self._status_error(response.status_code)

    def _status_error(self, status: int) -> Exception:
        """What a non-2xx ``status`` means (see the module docstring's table)."""
        if status in _MISCONFIGURED:
            code, what = _MISCONFIGURED[status]
            return UpstreamError(
                f"backend {self.name} {what} (HTTP {status}): check its configuration in the gateway",
                code=code,
            )
        if status in (408, 429) or status >= 500:
            return _RetryableError(UpstreamError(f"backend {self.name} answered HTTP {status}"))
        return UpstreamRejectedError(
            f"backend {self.name} rejected the request with HTTP {status}", status=status
        )

    async def next_part(self, parts: AsyncIterator[_Part]) -> _Part | None:
        """The next part of a response body (None at its end), awaited at most the read timeout; raises
        ``UpstreamTimeoutError`` when it stalls, ``UpstreamError`` when it is cut or not HTTP.

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

    async def read_body(self, response: httpx.Response) -> bytes:
        """The whole body of ``response``, each part bounded by the read timeout (:meth:`next_part`);
        the response is closed when this returns or raises."""
        content, parts = [], response.aiter_bytes()
        try:
            while (part := await self.next_part(parts)) is not None:
                content.append(part)
        finally:
            await close_response(response)
        return b"".join(content)

    async def lines(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        """The lines of ``response``'s body (an SSE stream's ``event:``, ``data:`` and blank lines), each
        bounded by the read timeout (:meth:`next_part`). The response is closed when the lines end, raise
        or are closed: wrap them in ``contextlib.aclosing`` to stop early."""
        parts = response.aiter_lines()
        try:
            while (line := await self.next_part(parts)) is not None:
                yield line
        finally:
            await close_response(response)


async def close_response(response: httpx.Response) -> None:
    """Close ``response``, ignoring its errors (nothing is left to learn from it)."""
    with contextlib.suppress(httpx.HTTPError, aiohttp.ClientError):
        await response.aclose()


class _RetryableError(Exception):
    """A failure another attempt may not have: the ``error`` to raise when no attempt is left."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error
