"""uvicorn's HTTP protocols, hardened: a deadline for a request's headers, and OpenAI-shaped answers to
bytes that are not HTTP.

uvicorn waits for a request line and its headers without any time limit, so a client that opens
connections and sends a header byte every few seconds (slowloris) holds each of them open for ever.
And what its parser refuses (a bad request line, a duplicate ``content-length``, ``content-length``
with ``transfer-encoding``) it answers with a ``text/plain`` 400. :func:`hardened_protocol` gives
uvicorn (its ``http=`` option) the protocol class it would pick itself, httptools or h11, with:

- an OpenAI-shaped 400 (code ``invalid_http``, ``connection: close``) for what the parser refuses;
- a cap on a request's line and headers: past :data:`MAX_HEADER_BYTES` before they are complete, an
  OpenAI-shaped 431 (code ``headers_too_large``) and the connection closed (httptools has no cap: a
  64 MiB header held the event loop for 6.6 s);
- the header deadline. A connection's first request line and headers must have arrived in full
  ``timeout_seconds`` after the connection opened (one that sends nothing at all is closed then too).
  Between requests on a keep-alive connection, uvicorn's own ``timeout_keep_alive`` (5 s) still closes an
  idle connection, as before; once bytes of a next request arrive, its headers must have arrived in full
  ``timeout_seconds`` after the first of them. When the deadline passes, a connection that sent part of
  a request is answered ``408`` (an OpenAI-shaped error, code ``request_timeout``, with
  ``connection: close``) and closed; one that sent nothing is closed without an answer (it asked
  nothing, and a client could read an unasked answer as that of its next request).

The body is not covered (the app reads it under ``body_timeout_seconds``), nor is the time to answer.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any, ClassVar, Literal

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from routeyard.gateway.errors import (
    GatewayError,
    HeadersTooLargeError,
    InvalidRequestError,
    RequestTimeoutError,
)

HttpParser = Literal["auto", "httptools", "h11"]
MAX_HEADER_BYTES = 64 * 1024


class _HeaderDeadline(asyncio.Protocol):
    """The deadline and the OpenAI-shaped 400, mixed into a uvicorn HTTP protocol (module docstring).

    It relies on what both of uvicorn's protocols have: ``transport``, ``loop``, ``server_state`` and
    ``cycle`` (the request being answered, ``None`` before the first one, ``response_complete`` after).
    """

    header_timeout_seconds: ClassVar[float] = 10.0
    transport: asyncio.Transport  # uvicorn's protocol sets these three
    loop: asyncio.AbstractEventLoop
    server_state: ServerState
    _deadline: asyncio.TimerHandle | None = None
    _request_begun = False  # bytes of a request arrived since the deadline was armed
    _header_bytes = 0  # bytes of the current request's line and headers so far

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and not self._answering():
            self._arm()  # the first bytes of the next request on a keep-alive connection
        self._request_begun = self._deadline is not None
        waiting_for_headers = not self._answering()
        super().data_received(data)
        if self._answering():
            self._disarm()  # its headers are in
        elif waiting_for_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._refuse(
                    431, HeadersTooLargeError(f"the request's headers are over {MAX_HEADER_BYTES} bytes")
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """What uvicorn sends when its parser refuses the bytes (``msg`` is its text): an OpenAI error."""
        self._refuse(400, InvalidRequestError("the request is not valid HTTP/1.1", code="invalid_http"))

    def _refuse(self, status: int, error: GatewayError) -> None:
        """Answer ``error`` with ``status`` and close the connection."""
        self._disarm()
        self.transport.write(closing_response(status, error, self.server_state.default_headers))
        self.transport.close()

    def _answering(self) -> bool:
        """Whether a request's headers are in and its response is not finished."""
        cycle: Any = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def _arm(self) -> None:
        self._request_begun = False
        self._header_bytes = 0
        self._deadline = self.loop.call_later(self.header_timeout_seconds, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        """Close the connection: 408 first if a request had begun."""
        self._deadline = None
        if self.transport.is_closing() or self._answering():
            return
        if self._request_begun:
            default_headers = self.server_state.default_headers
            error = RequestTimeoutError(
                f"the request's headers did not arrive within {self.header_timeout_seconds:g} s"
            )
            self.transport.write(closing_response(408, error, default_headers))
        self.transport.close()


class HttpToolsWithHeaderDeadline(_HeaderDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol (its choice when httptools is installed) with the header deadline."""


class H11WithHeaderDeadline(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the header deadline."""


_WITH_DEADLINE: dict[str, type[_HeaderDeadline]] = {
    "auto": HttpToolsWithHeaderDeadline,  # httptools is a dependency of routeyard: uvicorn's "auto" picks it
    "httptools": HttpToolsWithHeaderDeadline,
    "h11": H11WithHeaderDeadline,
}


def hardened_protocol(timeout_seconds: float, parser: HttpParser = "auto") -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's ``http=``: ``parser``'s (``auto``: httptools) whose connections must
    deliver each request's line and headers within ``timeout_seconds`` (> 0; see the module docstring)."""
    if timeout_seconds <= 0:
        raise ValueError(f"timeout_seconds must be positive, not {timeout_seconds}")
    base = _WITH_DEADLINE[parser]
    return type(base.__name__, (base,), {"header_timeout_seconds": timeout_seconds})


def closing_response(status: int, error: GatewayError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole response with ``error``'s OpenAI-shaped body that closes the connection; ``default_headers``
    are uvicorn's (``date``, ``server``)."""
    body = json.dumps(error.body()).encode()
    headers = [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode() + b"".join(
        name + b": " + value + b"\r\n" for name, value in headers
    )
    return head + b"\r\n" + body
