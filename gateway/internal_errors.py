"""The last resort: an exception nothing else handled becomes an OpenAI-shaped 500, and its message is
never logged (it might quote a prompt or a response)."""

from __future__ import annotations

import logging
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeyard.gateway.errors import GatewayError
from routeyard.gateway.fast_json import FastJSONResponse

logger = logging.getLogger("routeyard.gateway")


class InternalErrors:
    """ASGI middleware: an exception nothing else handled becomes a 500 OpenAI error.

    Only the exception's type and frames are logged, never its message (it might quote a prompt or a
    response). Starlette's own last-resort handler would re-raise after answering, and the server would
    log the whole exception; this one stops it here. After the response has started nothing can be sent
    any more: the exception is logged and the response ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            logger.error(
                "internal error %s at\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            if not started:
                await FastJSONResponse(GatewayError("internal error").body(), status_code=500)(
                    scope, receive, send
                )
