"""A chat completion's body, from bytes to a :class:`ChatCompletionRequest`, or a 4xx saying why not.

:func:`require_json` wants ``Content-Type: application/json`` (415 otherwise); :func:`parse` wants valid
JSON and UTF-8 (no lone surrogate), an object nested at most :data:`MAX_NESTING` deep, of the wire's
shape (400 otherwise, naming the field); :func:`parse_off_loop` parses a large body on a worker thread,
so other requests go on meanwhile, and counts the messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from routeyard.gateway.errors import InvalidRequestError, UnsupportedMediaTypeError
from routeyard.gateway.fast_json import JSONDecodeError, loads, nested_deeper_than
from routeyard.gateway.wire import ChatCompletionRequest
from routeyard.validation import validation_problems

MAX_NESTING = 64
"""Deepest nesting of objects and arrays a request body may have (a deeper one is a 400)."""
_PARSE_ON_LOOP_BYTES = 64 * 1024  # a larger body is parsed on a worker thread (≈ 0.3 ms of CPU and up)


def require_json(request: Request) -> None:
    """Raise UnsupportedMediaTypeError (415) unless the body is declared JSON (``application/json``,
    parameters such as ``charset`` allowed)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaTypeError(
            "the request body must be JSON, sent with `Content-Type: application/json`"
        )


async def parse_off_loop(raw: bytes, max_messages: int) -> ChatCompletionRequest:
    """:func:`parse` of ``raw``, on a worker thread when it is large (other requests go on meanwhile);
    more than ``max_messages`` messages is a 400."""
    if len(raw) > _PARSE_ON_LOOP_BYTES:
        parsed = await asyncio.to_thread(parse, raw)
    else:
        parsed = parse(raw)
    if len(parsed.messages) > max_messages:
        raise InvalidRequestError(f"messages: more than {max_messages} messages", param="messages")
    return parsed


def parse(raw: bytes) -> ChatCompletionRequest:
    return chat_request(json_object(raw))


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` as a JSON object; raises InvalidRequestError (400) for invalid JSON or UTF-8, another JSON
    value, or nesting deeper than :data:`MAX_NESTING`."""
    try:
        data = loads(raw)
    except JSONDecodeError as exc:  # invalid JSON or UTF-8, a lone surrogate, nested past 1,024
        raise InvalidRequestError("the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    if nested_deeper_than(data, MAX_NESTING):
        raise InvalidRequestError(f"the request body is nested deeper than {MAX_NESTING} levels")
    return data


def chat_request(data: dict[str, Any]) -> ChatCompletionRequest:
    """``data`` validated as a chat completion request; raises InvalidRequestError (400) naming the first
    field that is wrong."""
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        where, message = validation_problems(exc)[0]
        raise InvalidRequestError(f"{where}: {message}", param=where or None) from exc
