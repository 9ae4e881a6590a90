"""The request's span: ASGI middleware making a SERVER span around each request to a front door,
joined to the caller's W3C ``traceparent``, noting the reply's status and ``x-routeyard-*`` facts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.semconv.attributes import error_attributes, http_attributes, url_attributes
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.span_failure import mark_failed

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

TRACED_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v1/responses"})
"""The endpoints a request span is made for (the front doors; not probes, metrics or admin)."""

_PROPAGATOR = TraceContextTextMapPropagator()
_REPLY_HEADERS = {  # the reply's x-routeyard-* headers noted on its request span
    b"x-routeyard-request-id": "routeyard.request_id",
    b"x-routeyard-router": "routeyard.router",
    b"x-routeyard-backend": "routeyard.backend",
    b"x-routeyard-plan": "routeyard.plan",
    b"x-routeyard-cache": "routeyard.cache",
}


class RequestSpans:
    """ASGI middleware: a SERVER span around each request to :data:`TRACED_PATHS`, a child of the
    caller's ``traceparent`` when it sent one, current while the request is served (so the spans of
    its decision and calls are its children) and ended when the response's last byte is sent."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in TRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        attributes = {
            http_attributes.HTTP_REQUEST_METHOD: method,
            http_attributes.HTTP_ROUTE: path,
            url_attributes.URL_PATH: path,
        }
        with self.tracer.start_as_current_span(
            f"{method} {path}",
            context=_PROPAGATOR.extract(_trace_headers(scope["headers"])),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:

            async def noting_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    _note_response(span, message["status"], message.get("headers", ()))
                await send(message)

            try:
                await self.app(scope, receive, noting_send)
            except BaseException as exc:
                mark_failed(span, exc)
                raise


def _trace_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The W3C trace-context headers among raw ASGI ``headers``."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }


def _note_response(span: trace.Span, status: int, headers: Any) -> None:
    """The response's status (a 5xx marks the span an error) and its routing headers on ``span``."""
    span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status)
    if status >= 500:
        span.set_attribute(error_attributes.ERROR_TYPE, str(status))
        span.set_status(Status(StatusCode.ERROR))
    for name, value in headers:
        if (attribute := _REPLY_HEADERS.get(name)) is not None:
            span.set_attribute(attribute, value.decode("latin-1"))
        elif name == b"x-routeyard-cost-usd" and (cost := _number(value)) is not None:
            span.set_attribute("routeyard.cost_usd", cost)  # a stream's header is a prediction: not noted


def _number(value: bytes) -> float | None:
    """``value`` read as a float; None when it is not a number."""
    try:
        return float(value)
    except ValueError:
        return None
