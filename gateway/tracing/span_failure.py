"""Marking a span failed: the one way every gateway span records an error (its kind, never its
message)."""

from opentelemetry import trace
from opentelemetry.semconv.attributes import error_attributes
from opentelemetry.trace import Status, StatusCode

from routeyard.gateway.errors import GatewayError


def mark_failed(span: trace.Span, error: BaseException) -> None:
    """Mark ``span`` failed with ``error``'s kind as ``error.type`` (a gateway error's code, else the
    exception's class; never its message), and its HTTP status when it has one."""
    kind = error.code if isinstance(error, GatewayError) else type(error).__name__
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    if isinstance(error, GatewayError):
        span.set_attribute("routeyard.error.status", error.status)
    span.set_status(Status(StatusCode.ERROR))
