"""The ChatCompleter seam: what an LLM judge needs of a chat model — send messages, get text and $ cost.

The gateway provides one over any of its backends (``routeyard.gateway.backends.chat_completer``);
``judges`` never imports ``gateway``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TextReply:
    """A chat model's reply: its text and what it cost ($)."""

    text: str
    cost_usd: float = 0.0


class ChatCompleter(Protocol):
    """A chat model a judge can ask; ``name`` says who charges for it."""

    name: str

    async def complete_text(self, messages: list[dict[str, str]]) -> TextReply:
        """The reply to ``messages``; may raise on any failure (the judge catches it)."""
        ...
