"""At most ``limit_concurrency`` requests in flight; one more is answered 503 ``overloaded`` at once.

uvicorn's own ``limit_concurrency`` answers a plain-text 503 and counts connections, not requests; this
ASGI middleware answers an OpenAI-shaped error with ``retry-after: 1`` and counts a request from its
start until its response has been sent (a stream, until its last chunk). Probes (``/healthz``,
``/readyz``) and ``/metrics`` are always answered: an overloaded gateway must still say how it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from routeyard.gateway.errors import OverloadedError
from routeyard.gateway.fast_json import FastJSONResponse


class ConcurrencyLimit:
    """ASGI middleware: HTTP requests to paths outside ``exempt`` beyond ``limit`` at once get a 503."""

    def __init__(self, app: ASGIApp, *, limit: int, exempt: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt
        self.in_flight = 0
        self.refused = 0  # requests answered 503 since the start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.refused += 1
            error = OverloadedError(
                f"the gateway is at its limit of {self.limit} requests in flight (limit_concurrency)",
                retry_after=1,
            )
            await FastJSONResponse(error.body(), status_code=error.status, headers=error.response_headers())(
                scope, receive, send
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
