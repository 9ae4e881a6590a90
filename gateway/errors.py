"""The gateway's exceptions, and how each becomes an OpenAI-shaped error response.

Every failure a client can see is one of these, rendered in one place (``routeyard.gateway.app``) as
``{"error": {"message", "type", "param", "code"}}`` with the exception's HTTP status::

    GatewayError                      500 server_error
    ├── InvalidRequestError           400 invalid_request_error   (malformed JSON, wrong types, bad routing)
    │   ├── NotFoundError             404                         (no such request id, no such key)
    │   │   └── ModelNotFoundError    404                         (no backend or router of that name)
    │   ├── RequestTooLargeError      413
    │   ├── HeadersTooLargeError      431                         (a request line and headers over 64 KiB)
    │   └── NoBackendFitsError        400                         (exclude / max cost / min quality left none)
    │   ├── RequestTimeoutError       408                         (the body did not arrive in time)
    │   └── ClientClosedError         499                         (the client left before its body arrived)
    ├── AuthenticationError           401 authentication_error
    │   └── AdminKeyRequiredError     401                         (an admin endpoint; asks for HTTP Basic)
    ├── PermissionDeniedError         403 permission_error        (a model the key may not use)
    ├── RateLimitError                429 rate_limit_error        (rate_limited, budget_exceeded)
    ├── NotReadyError                 503 service_unavailable     (the router's predictor is still loading)
    │   ├── OverloadedError           503                         (limit_concurrency reached; retry-after)
    │   ├── EmbedderUnavailableError  503                         (the prompt could not be embedded)
    │   └── KeyStoreUnavailableError  503                         (the key store failed: fail closed)
    ├── DeadlineExceededError         504 timeout                 (request_timeout_seconds passed)
    └── UpstreamError                 502 upstream_error          (refused, 5xx, garbage, cut stream)
        ├── UpstreamTimeoutError      504 upstream_timeout
        ├── UpstreamRejectedError     the upstream's 4xx but 401/403/404/408/429 (the request's fault)
        └── BackendUnavailableError   503 service_unavailable     (every candidate failed or is cooling down)

Messages never contain prompt text or upstream keys: they name backends, fields and statuses only.
A pydantic ``ValidationError`` is put into words by ``routeyard.validation.validation_problems``, for
requests and configuration alike.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error a client sees; ``status`` is the HTTP status, ``type`` the OpenAI error type."""

    status = 500
    type = "server_error"
    default_code: str | None = None
    _added_headers: dict[str, str] = {}  # noqa: RUF012 - never mutated: add_headers assigns a new dict

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code

    def body(self) -> dict[str, Any]:
        """The OpenAI error object."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        """HTTP headers the response carries (``retry-after`` for the errors that know when to retry)."""
        return {}

    def add_headers(self, headers: dict[str, str]) -> None:
        """Have the response carry ``headers`` too (what the request measured before it failed, such as
        its overhead)."""
        self._added_headers = {**self._added_headers, **headers}

    def response_headers(self) -> dict[str, str]:
        """Every header the error's response carries: its own (:meth:`headers`) and those added."""
        return {**self.headers(), **self._added_headers}


class _RetryLaterError(GatewayError):
    """An error that tells the client when to try again: ``retry_after`` seconds (≥ 1)."""

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after)}


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"


class NotFoundError(InvalidRequestError):
    status = 404
    default_code = "not_found"


class ModelNotFoundError(NotFoundError):
    default_code = "model_not_found"


class RequestTooLargeError(InvalidRequestError):
    status = 413
    default_code = "request_too_large"


class HeadersTooLargeError(InvalidRequestError):
    status = 431
    default_code = "headers_too_large"


class UnsupportedMediaTypeError(InvalidRequestError):
    status = 415
    default_code = "unsupported_media_type"


class NoBackendFitsError(InvalidRequestError):
    default_code = "no_backend_fits"


class RequestTimeoutError(InvalidRequestError):
    status = 408
    default_code = "request_timeout"


class ClientClosedError(InvalidRequestError):
    """The client closed the connection before its body arrived: nobody reads the answer, the request is
    counted with nginx's 499."""

    status = 499
    default_code = "client_closed"


class AuthenticationError(GatewayError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"


class AdminKeyRequiredError(AuthenticationError):
    """An admin endpoint without the admin key; asks a browser for it (HTTP Basic, the key as password)."""

    default_code = "admin_key_required"

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": 'Basic realm="routeyard admin"'}


class PermissionDeniedError(GatewayError):
    status = 403
    type = "permission_error"
    default_code = "permission_denied"


class RateLimitError(_RetryLaterError):
    """A key's rate limit (code ``rate_limited``) or budget (``budget_exceeded``) refused the request."""

    status = 429
    type = "rate_limit_error"
    default_code = "rate_limited"


class NotReadyError(GatewayError):
    status = 503
    type = "service_unavailable"
    default_code = "not_ready"


class OverloadedError(_RetryLaterError, NotReadyError):
    default_code = "overloaded"


class EmbedderUnavailableError(NotReadyError):
    default_code = "embedder_unavailable"


class KeyStoreUnavailableError(NotReadyError):
    """The virtual keys' store (Redis, SQLite) failed: a key is refused rather than let through."""

    default_code = "key_store_unavailable"


class DeadlineExceededError(GatewayError):
    status = 504
    type = "timeout"
    default_code = "request_timeout"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"
    default_code = "upstream_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    type = "upstream_timeout"
    default_code = "upstream_timeout"


class UpstreamRejectedError(UpstreamError):
    """The upstream answered a 4xx other than 401, 403, 404, 408 and 429: the request itself is bad, so
    no retry or fallback (401/403/404 are the gateway's own misconfiguration: a 502 that falls back)."""

    type = "invalid_request_error"
    default_code = "upstream_rejected"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BackendUnavailableError(UpstreamError):
    status = 503
    type = "service_unavailable"
    default_code = "backend_unavailable"
