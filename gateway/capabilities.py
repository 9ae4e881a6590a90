"""What a backend can serve, what a request needs, and which backends a request must avoid.

Every backend config has a ``capabilities:`` block (:class:`Capabilities`; by default everything is
allowed and nothing limited, so a config without one is served as before). A request's
:func:`requirements` are what it asks of a backend: tools (``tools`` or ``functions``), vision (an image
content part), a JSON schema (``response_format`` of type ``json_schema``), room for its prompt (tokens
estimated by ``routeyard.gateway.token_count``, only when some backend limits its context) and for the
output it asks for (``max_tokens`` / ``max_completion_tokens``). :func:`excluded` names the backends that
fall short and why; :func:`shortfall_message` says, for a 400, what no backend could give.

A :class:`CapabilityTable` is built once per gateway (``GatewayRuntime.capabilities``); its
:meth:`~CapabilityTable.unfit` skips the whole check when every backend is permissive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from routeyard.gateway.token_count import count_prompt_tokens
from routeyard.gateway.wire import ChatCompletionRequest

IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})
"""Content-part types that carry an image (OpenAI chat, OpenAI responses, Anthropic)."""


class Capabilities(BaseModel):
    """What a backend can serve. ``tools``, ``vision`` (image parts) and ``json_schema`` (a
    ``response_format`` with a schema) are allowed unless set false; ``max_context_tokens`` (prompt
    tokens, estimated) and ``max_output_tokens`` (the ``max_tokens`` a request may ask for) are ≥ 1,
    None for no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: bool = True
    vision: bool = True
    json_schema: bool = True
    max_context_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)

    @property
    def permissive(self) -> bool:
        """Whether it allows everything and limits nothing (every request fits)."""
        return self == PERMISSIVE


PERMISSIVE = Capabilities()
"""The default: everything allowed, no limits."""


@dataclass(frozen=True)
class Requirements:
    """What a request needs of a backend: ``tools``, ``vision``, ``json_schema``, room for
    ``output_tokens`` (None: it asks for no maximum) and for its prompt (``prompt_tokens``, estimated
    from ``prompt_turns`` on first use, so a request is tokenized only when some backend has a context
    limit)."""

    tools: bool = False
    vision: bool = False
    json_schema: bool = False
    output_tokens: int | None = None
    prompt_turns: tuple[str, ...] = ()

    @cached_property
    def prompt_tokens(self) -> int:
        """The prompt's estimated tokens (``count_prompt_tokens``)."""
        return count_prompt_tokens(self.prompt_turns)


def requirements(request: ChatCompletionRequest) -> Requirements:
    """What ``request`` needs of the backend that serves it."""
    extra = request.model_extra or {}
    response_format = extra.get("response_format")
    outputs = [n for n in (request.max_tokens, request.max_completion_tokens) if n is not None]
    return Requirements(
        tools=bool(extra.get("tools")) or bool(extra.get("functions")),
        vision=any(_has_image(message.content) for message in request.messages),
        json_schema=isinstance(response_format, dict) and response_format.get("type") == "json_schema",
        output_tokens=max(outputs) if outputs else None,
        prompt_turns=request.prompt_turns(),
    )


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") in IMAGE_PART_TYPES for part in content
    )


def shortfalls(needs: Requirements, capabilities: Capabilities) -> list[tuple[str, str]]:
    """Every capability ``capabilities`` lacks for ``needs``, as (capability name, reason); empty when
    the backend can serve the request."""
    found: list[tuple[str, str]] = []
    if needs.tools and not capabilities.tools:
        found.append(("tools", "does not support tools"))
    if needs.vision and not capabilities.vision:
        found.append(("vision", "does not support image input (vision)"))
    if needs.json_schema and not capabilities.json_schema:
        found.append(("json_schema", "does not support response_format json_schema"))
    output_limit = capabilities.max_output_tokens
    if needs.output_tokens is not None and output_limit is not None and needs.output_tokens > output_limit:
        found.append(
            (
                "max_output_tokens",
                f"max_tokens {needs.output_tokens} exceeds its max_output_tokens {output_limit}",
            )
        )
    context_limit = capabilities.max_context_tokens
    if context_limit is not None and needs.prompt_tokens > context_limit:
        found.append(
            (
                "max_context_tokens",
                f"prompt of ≈ {needs.prompt_tokens} tokens exceeds its max_context_tokens {context_limit}",
            )
        )
    return found


def excluded(needs: Requirements, backends: Mapping[str, Capabilities]) -> dict[str, str]:
    """The backends of ``backends`` that cannot serve a request with ``needs``, each with why (its
    shortfalls joined by ``"; "``); the others are absent."""
    reasons: dict[str, str] = {}
    for name, capabilities in backends.items():
        found = shortfalls(needs, capabilities)
        if found:
            reasons[name] = "; ".join(reason for _, reason in found)
    return reasons


def shortfall_message(needs: Requirements, backends: Mapping[str, Capabilities]) -> str:
    """Why no backend of ``backends`` can serve a request with ``needs``: the capabilities none has
    (``no backend supports tools``), or, when each lacks a different one, every backend's reasons."""
    lacking = [{name for name, _ in shortfalls(needs, c)} for c in backends.values()]
    missing = set.intersection(*lacking) if lacking else set()
    if missing:
        return "no backend supports " + " and ".join(_phrase(name, needs) for name in sorted(missing))
    reasons = excluded(needs, backends)
    return "no backend can serve this request: " + "; ".join(f"{b} {r}" for b, r in reasons.items())


def _phrase(capability: str, needs: Requirements) -> str:
    if capability == "max_context_tokens":
        return f"a prompt of ≈ {needs.prompt_tokens} tokens (max_context_tokens)"
    if capability == "max_output_tokens":
        return f"max_tokens {needs.output_tokens} (max_output_tokens)"
    return capability


class _Configured(Protocol):
    """A backend config: its name and capabilities (``BackendConfig``)."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...


@dataclass(frozen=True)
class CapabilityTable:
    """Every configured backend's capabilities by name, and whether all are permissive (then no
    request needs checking). Built once per gateway (``GatewayRuntime.capabilities``): a reload never
    changes the backends."""

    backends: Mapping[str, Capabilities]
    permissive: bool

    @classmethod
    def of(cls, configs: Sequence[_Configured]) -> CapabilityTable:
        """The table of ``configs`` (backend configs)."""
        backends = {config.name: config.capabilities for config in configs}
        return cls(backends, all(c.permissive for c in backends.values()))

    def unfit(self, request: ChatCompletionRequest) -> tuple[Requirements | None, dict[str, str]]:
        """``request``'s requirements and the backends that cannot serve it, with why; (None, {}) at once
        when every backend is permissive."""
        if self.permissive:
            return None, {}
        needs = requirements(request)
        return needs, excluded(needs, self.backends)
