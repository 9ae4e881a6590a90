"""What every HTTP-speaking backend shares: retries, a deadline, size limits, the circuit breaker and error
translation.

A backend kind speaks its own wire (OpenAI chat completions, Anthropic messages, …) *on* an
:class:`HttpTransport`, which posts its JSON, retries, bounds the call (:class:`UpstreamLimits`), keeps the
breaker and translates every failure of the exchange, where it enters, into ``routeyard.gateway.errors``
(``raise … from``):

=====================================================  ==========================================
upstream                                               raised (HTTP status the client sees)
=====================================================  ==========================================
unreachable, refused, dropped before answering         ``UpstreamError`` (502), after retries
HTTP 408, 429, 5xx                                     ``UpstreamError`` (502), after retries
no answer within the read timeout, before or between   ``UpstreamTimeoutError`` (504), no retry
the parts of its body
the call not over within ``total_seconds`` of its      ``UpstreamTimeoutError`` (504), no retry
start (retries, waiting for a connection and the
whole body included: a trickling upstream)
a whole body over ``max_response_bytes``, a stream     ``UpstreamError`` (502, code
line over ``max_line_bytes``                           ``upstream_response_too_large``), no retry
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

The deadline starts when :meth:`HttpTransport.post` is called and travels with the response it returns
(its extension ``routeyard.deadline``), so that :meth:`~HttpTransport.read_body` and
:meth:`~HttpTransport.lines` end the body at it too. A stream is bounded as a whole: it must end within
``total_seconds`` of its request, however slowly its client reads. The size limits keep what a call holds
bounded: a whole body is refused at once when its ``content-length`` is over the limit, else as soon as
that many bytes came; a stream's lines are split here (:class:`LineSplitter`) rather than by httpx, whose
line buffer has no bound. A stream has no limit on its total size: its chunks are passed on as they come,
and the deadline ends it. After a refusal the response is closed, and its connection with it.

Each backend posts to a connection pool of its own
(:meth:`~routeyard.gateway.backends.connection_pools.ConnectionPools.new_pool`, whose module tells why).
Requests go to that pool's transport directly, not through an ``httpx.AsyncClient``: the client's
redirects, cookie jar and per-request log line cost ≈ 0.25 ms a call and a gateway needs none of them
(issue 14's profile). The body is serialised with orjson. The pool's adapter (``httpx-aiohttp``) maps only
some aiohttp errors to httpx's; the rest (``aiohttp.ClientResponseError`` for bytes that are not HTTP, …)
are caught here too. Credentials travel only in the headers the backend gives, and no message here names
them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx
import orjson
from aiohttp.http_exceptions import HttpProcessingError

from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.line_splitter import LineSplitter, LineTooLongError
from routeyard.gateway.errors import (
    BackendUnavailableError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
)

_Part = TypeVar("_Part", bytes, str)
_FIRST_BACKOFF_SECONDS = 0.05
_DEADLINE = "routeyard.deadline"  # the response extension holding its call's deadline (loop time)
_TOO_LARGE = "upstream_response_too_large"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
"""A backend's timeouts unless configured: 60 s to read (each part of the body), 5 s to connect."""
_MISCONFIGURED = {  # status: (code, what the backend refused), for the operator, never naming the key
    401: ("upstream_credentials_rejected", "rejected the gateway's credentials"),
    403: ("upstream_credentials_rejected", "refused the gateway's credentials"),
    404: ("upstream_model_not_found", "does not know the gateway's model or path"),
}


@dataclass(frozen=True)
class UpstreamLimits:
    """What one call to a backend may take (see the module docstring).

    Attributes:
        total_seconds: the whole call, from the request to the body's (or the stream's) last byte, > 0.
        max_response_bytes: the largest whole body (:meth:`HttpTransport.read_body`), decoded, ≥ 1.
        max_line_bytes: the longest line of a streamed body (:meth:`HttpTransport.lines`), ≥ 1.
    """

    total_seconds: float = 300.0
    max_response_bytes: int = 16 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024


DEFAULT_LIMITS = UpstreamLimits()
"""A backend's limits unless configured: 300 s a call, 16 MiB a body, 1 MiB a stream's line."""


class HttpTransport:
    """JSON POSTs to ``url`` for the backend called ``name`` (see the module docstring).

    Args:
        name: the backend's name, in every error message.
        pool: the backend's own connection pool (:meth:`ConnectionPools.new_pool`).
        url: the endpoint every :meth:`post` goes to.
        headers: sent with every request (the credentials); never in a message.
        timeout: connect, read (per part of a body) and write timeouts; ``pool``: the longest wait for
            a connection of the pool.
        limits: the deadline and size limits of each call.
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
        limits: UpstreamLimits = DEFAULT_LIMITS,
        retries: int = 2,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.limits = limits
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
        ``UpstreamError`` and its subclasses after retries (see the module docstring). The call's deadline
        starts now and travels with the response."""
        deadline = asyncio.get_running_loop().time() + self.limits.total_seconds
        try:
            async with asyncio.timeout_at(deadline) as scope:
                response = await self._post_with_retries(payload)
        except TimeoutError as exc:
            if not scope.expired():  # another timeout, already translated where it arose
                raise
            raise self._deadline_error() from exc
        response.extensions[_DEADLINE] = deadline
        return response

    async def _post_with_retries(self, payload: Any) -> httpx.Response:
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

    async def next_part(self, parts: AsyncIterator[_Part], deadline: float | None = None) -> _Part | None:
        """The next part of a response body (None at its end), awaited at most the read timeout and
        until ``deadline`` (the event loop's time; None: none); raises ``UpstreamTimeoutError`` when it
        stalls or the deadline passes, ``UpstreamError`` when it is cut or not HTTP.

        aiohttp's own read timeout is not enough: after a malformed chunk of a chunked body, its C parser
        leaves the body's reader waiting forever, the timeout dropped (aiohttp 3.14)."""
        now, read = asyncio.get_running_loop().time(), self._timeout.read
        when, by_deadline = None if read is None else now + read, False
        if deadline is not None and (when is None or deadline <= when):
            if deadline <= now:  # past it, even if a part is buffered
                raise self._deadline_error()
            when, by_deadline = deadline, True
        try:
            async with asyncio.timeout_at(when):
                return await anext(parts)
        except StopAsyncIteration:
            return None
        except (TimeoutError, httpx.ReadTimeout) as exc:
            if by_deadline:
                raise self._deadline_error() from exc
            raise UpstreamTimeoutError(f"backend {self.name} stalled mid-answer") from exc
        except (aiohttp.ClientResponseError, HttpProcessingError, httpx.DecodingError) as exc:
            raise UpstreamError(f"backend {self.name} sent an answer that is not valid HTTP") from exc
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"backend {self.name} cut its answer ({type(exc).__name__})") from exc

    async def read_body(self, response: httpx.Response) -> bytes:
        """The whole body of ``response``, each part bounded by the read timeout, all of it by the call's
        deadline (:meth:`next_part`) and ``limits.max_response_bytes``; the response is closed when this
        returns or raises."""
        limit, deadline = self.limits.max_response_bytes, response.extensions.get(_DEADLINE)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise self._too_large(f"a response over its limit of {limit} bytes")
            content, size, parts = [], 0, response.aiter_bytes()
            while (part := await self.next_part(parts, deadline)) is not None:
                size += len(part)
                if size > limit:
                    raise self._too_large(f"a response over its limit of {limit} bytes")
                content.append(part)
        finally:
            await close_response(response)
        return b"".join(content)

    async def lines(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        """The lines of ``response``'s body (an SSE stream's ``event:``, ``data:`` and blank lines), each
        part bounded by the read timeout, all of them by the call's deadline (:meth:`next_part`), each
        line by ``limits.max_line_bytes``. The response is closed when the lines end, raise or are
        closed: wrap them in ``contextlib.aclosing`` to stop early."""
        deadline = response.extensions.get(_DEADLINE)
        splitter, parts = LineSplitter(self.limits.max_line_bytes), response.aiter_bytes()
        try:
            while (part := await self.next_part(parts, deadline)) is not None:
                try:
                    complete = splitter.feed(part)
                except LineTooLongError as exc:
                    limit = self.limits.max_line_bytes
                    raise self._too_large(f"a stream line over its limit of {limit} bytes") from exc
                for line in complete:
                    yield line
            for line in splitter.end():
                yield line
        finally:
            await close_response(response)

    def _deadline_error(self) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            f"backend {self.name} did not finish its answer within its deadline "
            f"({self.limits.total_seconds:g} s)"
        )

    def _too_large(self, what: str) -> UpstreamError:
        return UpstreamError(f"backend {self.name} sent {what}", code=_TOO_LARGE)


async def close_response(response: httpx.Response) -> None:
    """Close ``response``, ignoring its errors (nothing is left to learn from it)."""
    with contextlib.suppress(httpx.HTTPError, aiohttp.ClientError):
        await response.aclose()


class _RetryableError(Exception):
    """A failure another attempt may not have: the ``error`` to raise when no attempt is left."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(str(error))
        self.error = error
