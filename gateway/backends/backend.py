"""The Backend seam: one upstream LLM that answers OpenAI chat completions, whole or streamed.

A backend raises only ``routeyard.gateway.errors.UpstreamError`` and its subclasses; ``UpstreamRejectedError``
means the request itself is at fault (no other backend should get it), every other one that this backend
failed (the gateway may try the next candidate). :meth:`Backend.stream` raises *before* its first chunk
when the upstream cannot answer at all (so the gateway can fall back) and raises mid-stream when the
stream is cut or turns to garbage (the gateway then ends the client's stream with an error chunk).

What a backend returns has been checked: a :class:`Reply` body is a completion whose ``choices`` are
objects with a ``message`` object; a chunk has a ``choices`` list of objects; :class:`Usage` counts are
integers in [0, :data:`MAX_TOKENS`], so that every cost (:meth:`Price.cost`) is finite and ≥ 0.
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
        """The usage in an OpenAI ``usage`` object, or None when it is absent or not believable.

        ``prompt_tokens`` and ``completion_tokens`` must be integers (or integral floats) in
        [0, :data:`MAX_TOKENS`]: a negative, fractional, non-finite or absurd count, a string or a bool is
        an upstream's bug, and the caller estimates the usage instead. ``estimated`` is read only as the
        JSON ``true``.
        """
        if not isinstance(raw, dict):
            return None
        prompt, completion = (
            _token_count(raw.get("prompt_tokens")),
            _token_count(raw.get("completion_tokens")),
        )
        if prompt is None or completion is None:
            return None
        return cls(prompt, completion, raw.get("estimated") is True)


MAX_TOKENS = 100_000_000
"""The largest token count believed of one call (far above any context window; keeps costs finite)."""


def _token_count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():  # is_integer() is False for inf and nan
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_TOKENS:
        return value
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
        """The completion for an OpenAI request ``body`` (``stream`` and ``stream_options`` ignored);
        ``reply.usage`` is the upstream's when believable, else estimated (``usage.estimated``)."""
        ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The completion as OpenAI chunk objects; the last carries ``usage`` (asked of the upstream, or
        estimated, then flagged ``usage.estimated``) and ``routeyard_cost_usd``. Unless
        ``body["stream_options"]["include_usage"]`` is true, every chunk has a choice (clients read
        ``chunk.choices[0]``); when it is, the last may be OpenAI's usage chunk with ``choices: []``."""
        ...
