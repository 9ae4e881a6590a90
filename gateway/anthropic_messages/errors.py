"""What goes wrong, in both dialects: :class:`MessagesTranslationError`, a body that cannot be
translated (a 400 naming the field); and error bodies mapped both ways: an OpenAI-shaped error as
Anthropic's error body (:func:`anthropic_error_body`) or stream event (:func:`anthropic_error_event`) on
the front door, an Anthropic error as OpenAI's error body (:func:`openai_error_body`) for the
``anthropic`` backend kind.
"""

from __future__ import annotations

from typing import Any

from routeyard.gateway.errors import InvalidRequestError


class MessagesTranslationError(InvalidRequestError):
    """A body that cannot be translated: ``message`` says why, ``param`` names the field (a 400)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message, param=param)


_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_TYPE_BY_OPENAI_TYPE = {  # for an error inside a stream, which has no status of its own
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
    "service_unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "upstream_timeout": "timeout_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error type for an HTTP ``status`` (another 4xx: ``invalid_request_error``; another
    5xx: ``api_error``)."""
    return _ERROR_TYPE_BY_STATUS.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def anthropic_error_body(status: int, error_body: Any) -> dict[str, Any]:
    """The Anthropic error body for an OpenAI-shaped ``error_body`` answered with ``status``."""
    error = error_body.get("error") if isinstance(error_body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) and message else f"request failed with status {status}"
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": text}}


_OPENAI_TYPE_BY_ANTHROPIC_TYPE = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "billing_error": "insufficient_quota",
    "rate_limit_error": "rate_limit_error",
    "timeout_error": "timeout",
    "overloaded_error": "service_unavailable",
}


def openai_error_body(status: int, error_body: Any) -> dict[str, Any]:
    """The OpenAI error body for an Anthropic ``error_body`` answered with ``status`` (the backend side)."""
    error = error_body.get("error") if isinstance(error_body, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or anthropic_error_type(status))
    message = error.get("message") if isinstance(error.get("message"), str) else f"status {status}"
    openai_type = _OPENAI_TYPE_BY_ANTHROPIC_TYPE.get(kind, "server_error")
    return {"error": {"message": message, "type": openai_type, "param": None, "code": kind}}


def anthropic_error_event(error: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's ``error`` stream event for an OpenAI-shaped ``error`` object met inside a stream."""
    kind = _ERROR_TYPE_BY_OPENAI_TYPE.get(str(error.get("type")), "api_error")
    return {"type": "error", "error": {"type": kind, "message": str(error.get("message") or "stream failed")}}
