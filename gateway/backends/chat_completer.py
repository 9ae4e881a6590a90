"""A backend as the judges' :class:`judges.kinds.llm.ChatCompleter`: a whole completion's text and cost."""

from __future__ import annotations

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.wire import content_text
from routeyard.judges.chat_completer import TextReply


class BackendCompleter:
    """Asks ``backend`` for a deterministic (temperature 0) completion: its first choice's text
    (:func:`content_text` of its message's ``content``; empty when there is none) and the completion's
    $ cost.

    Raises what the backend raises (``gateway.errors.UpstreamError``); the LLM judge turns that into a
    failed grading.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.name = backend.name

    async def complete_text(self, messages: list[dict[str, str]]) -> TextReply:
        reply = await self.backend.complete(
            {"model": self.backend.name, "messages": messages, "temperature": 0}
        )
        choices = reply.body.get("choices") or [{}]
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return TextReply(content_text(content), reply.cost_usd)
