"""The Backend seam: one upstream LLM that answers OpenAI chat completions, whole or streamed.

A backend raises only ``gateway.errors.UpstreamError`` and its subclasses. :meth:`Backend.stream` raises
*before* its first chunk when the upstream cannot answer at all (so the gateway can fall back to the next
candidate) and raises mid-stream when the stream is cut (the gateway then ends the client's stream with an
error chunk).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Usage:
    """Tokens of one call, and whether they were counted by the upstream or estimated by us."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False

    def as_json(self) -> dict[str, Any]:
        """OpenAI's ``usage`` object, plus ``estimated``."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "estimated": self.estimated,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Usage | None:
        """The usage in an OpenAI ``usage`` object, or None when it is absent or malformed."""
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                int(raw["prompt_tokens"]), int(raw["completion_tokens"]), bool(raw.get("estimated", False))
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Price:
    """$ per million input and output tokens."""

    input_usd_per_million: float = 0.0
    output_usd_per_million: float = 0.0

    def cost(self, usage: Usage) -> float:
        """$ for ``usage``."""
        return (
            usage.prompt_tokens * self.input_usd_per_million
            + usage.completion_tokens * self.output_usd_per_million
        ) / 1e6


@dataclass(frozen=True)
class Reply:
    """A whole completion: the upstream's JSON body, its usage and its $ cost."""

    body: dict[str, Any]
    usage: Usage
    cost_usd: float


class Backend(Protocol):
    """An upstream LLM (see the module docstring)."""

    name: str

    async def complete(self, body: dict[str, Any]) -> Reply:
        """The completion for an OpenAI request ``body`` (``stream`` false)."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The completion as OpenAI chunk objects; the last carries ``usage`` (asked of the upstream, or
        estimated, then flagged ``usage.estimated``) and ``routeyard_cost_usd``."""
        ...
