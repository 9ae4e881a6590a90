"""A backend as the judges' :class:`judges.llm_judge.ChatCompleter`: the text of a whole completion."""

from __future__ import annotations

from gateway.backends.backend import Backend


class BackendCompleter:
    """Asks ``backend`` for a deterministic (temperature 0) completion and returns its first choice's text.

    Raises what the backend raises (``gateway.errors.UpstreamError``); the LLM judge turns that into a
    failed grading.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def complete_text(self, messages: list[dict[str, str]]) -> str:
        reply = await self.backend.complete(
            {"model": self.backend.name, "messages": messages, "temperature": 0}
        )
        choices = reply.body.get("choices") or [{}]
        content = (choices[0].get("message") or {}).get("content") if isinstance(choices[0], dict) else None
        return content if isinstance(content, str) else ""
