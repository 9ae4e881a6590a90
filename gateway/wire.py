"""The request side of the wire: OpenAI chat-completion requests plus routeyard's ``routing`` options.

Models follow OpenAI's field names and allow unknown fields (``tools``, ``response_format``, …), which
pass through to the upstream untouched. What routing needs is validated here, and the few fields whose
bad values are common and cheap to catch (a role OpenAI does not know, ``max_tokens`` or
``max_completion_tokens`` below 1, ``n`` outside 1–128). :func:`content_text`
is how every part of routeyard reads a message's text; :func:`read_body` reads any endpoint's body under a
size limit and a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect, Request

from routeyard.gateway.errors import ClientClosedError, RequestTimeoutError, RequestTooLargeError


def content_text(content: Any) -> str:
    """The text of a message's or a delta's ``content``, the one way routeyard reads it.

    A string is the text as it is. A list of content parts gives the ``text`` of every part that has one
    as a string (parts of type ``"text"``, or any part with a ``text`` key), joined by ``"\\n"``; other
    parts (images, audio, …) and a ``text`` that is not a string count for nothing. Anything else (None
    for a tool-call turn, a number, an object) is ``""``.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if isinstance(part, dict) and _has_text(part))
    return ""


def _has_text(part: dict[Any, Any]) -> bool:
    return isinstance(part.get("text"), str)


class RoutingOptions(BaseModel):
    """Per-request routing wishes (the SDK's ``extra_body={"routing": {...}}``).

    Attributes:
        willingness_to_pay: $ per unit of quality, ≥ 0; overrides the router's default.
        max_cost_usd: no backend predicted to cost more than this per request.
        min_quality: no backend predicted to score below this, in [0, 1].
        exclude: backend names never to call.
        session: the conversation this request belongs to, for session affinity (else ``user``, else a
            hash of the conversation's opening; ``routeyard.gateway.session_affinity``).
        cache: the response cache for this request: ``true`` or ``"exact"`` (an identical deterministic
            request's answer), ``"semantic"`` (also a close enough prompt's), ``false`` (none); absent:
            the gateway's ``cache_default`` (``routeyard.gateway.response_cache``).
    """

    model_config = ConfigDict(extra="forbid")

    willingness_to_pay: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    max_cost_usd: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    min_quality: float | None = Field(default=None, ge=0.0, le=1.0)
    exclude: list[str] = Field(default_factory=list)
    session: str | None = Field(default=None, min_length=1, max_length=256)
    cache: bool | Literal["exact", "semantic"] | None = None


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
"""The roles OpenAI's chat completions accept; another is refused here, not by the upstream."""


class ChatMessage(BaseModel):
    """One message; ``content`` is text, a list of content parts, or absent (tool-call turns)."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text (:func:`content_text` of its ``content``)."""
        return content_text(self.content)


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``; every field but these passes through."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    routing: RoutingOptions | None = None
    # checked as OpenAI checks them, so a bad value is a 400 here rather than a call the upstream refuses
    max_tokens: int | None = Field(default=None, ge=1, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, strict=True)
    n: int | None = Field(default=None, ge=1, le=128, strict=True)

    def prompt_turns(self) -> tuple[str, ...]:
        """The conversation as turns of text, the way prompts are embedded (routeyard.predictor.embedder)."""
        return tuple(message.text() for message in self.messages)

    def upstream_body(self, upstream_model: str) -> dict[str, Any]:
        """The body to forward: the request as sent, with the upstream's model id and without ``routing``."""
        body = self.model_dump(exclude={"routing"}, exclude_unset=True, mode="json")
        body["model"] = upstream_model
        return body


async def read_body(
    request: Request, limit: int, what: str = "request", timeout: float | None = None
) -> bytes:
    """The body of ``request``, at most ``limit`` bytes; raises RequestTooLargeError (413) past that,
    on the declared length or while streaming, without reading the rest, and RequestTimeoutError (408)
    when it has not all arrived ``timeout`` seconds after reading began (None: no deadline);
    ClientClosedError (499) when the client left first."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"{what} body over the limit of {limit} bytes")
    try:
        async with asyncio.timeout(timeout):
            return await _read_up_to(request, limit, what)
    except TimeoutError:
        raise RequestTimeoutError(f"the {what} body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise ClientClosedError(f"the client closed the connection before its {what} body arrived") from None


async def _read_up_to(request: Request, limit: int, what: str) -> bytes:
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise RequestTooLargeError(f"{what} body over the limit of {limit} bytes")
    return bytes(body)
