"""A small Anthropic Messages upstream (``POST /v1/messages``) for tests, controllable to fail.

Like Anthropic, it refuses a request without ``anthropic-version`` or ``max_tokens`` (HTTP 400,
``invalid_request_error``) and, with ``api_key``, one whose ``x-api-key`` is not that key (HTTP 401,
``authentication_error``). Errors have Anthropic's shape, ``{"type": "error", "error": {"type", "message"}}``.
The request's ``model`` chooses the behaviour:

================  =================================================================================
``echo``          answers ``echo: <last user text>`` with :data:`USAGE` (the default for any other id);
                  streamed as Anthropic's events, ``message_start`` … ``message_stop``, the answer in
                  two ``text_delta`` pieces after a ``ping``
``status-N``      HTTP N every time (``status-400``, ``status-500``, ``status-529``: overloaded, …)
``tool-call``     with ``tools``: calls the first tool with the input ``{"text": <last user text>}``
                  (id ``toolu_mock``, stop reason ``tool_use``; streamed in two ``input_json_delta``
                  pieces); otherwise like ``echo``
``error-mid``     a stream: ``message_start``, the text deltas, then an ``error`` event (overloaded)
``cut``           a stream that ends without ``message_stop``
================  =================================================================================

``GET /calls`` returns how many requests each model id received; ``GET /last`` the last request's body.
Run it with :class:`~routeyard.testing.server_thread.ServerThread`.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

USAGE = {
    "input_tokens": 11,
    "output_tokens": 7,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 3000,
}
"""The usage every answer reports (streamed: input and cache counts in ``message_start``, the output
tokens in ``message_delta``)."""

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
_ERROR_TYPES |= {500: "api_error", 529: "overloaded_error"}


def create_anthropic_app(api_key: str | None = None) -> Starlette:
    """The mock Messages upstream (see the module docstring); with ``api_key``, requests must carry it."""
    calls: collections.Counter[str] = collections.Counter()
    last: dict[str, Any] = {}

    async def messages(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "echo"))
        calls[model] += 1
        last.clear()
        last.update(body)
        if api_key is not None and request.headers.get("x-api-key") != api_key:
            return _error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "anthropic-version: header is required")
        if not isinstance(body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required")
        if model.startswith("status-"):
            return _error(int(model.removeprefix("status-")), "as configured")
        blocks = _answer_blocks(model, body)
        if body.get("stream"):
            return StreamingResponse(_events(model, blocks), media_type="text/event-stream")
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        return JSONResponse(_message(model, blocks, stop, USAGE))

    async def count(request: Request) -> Response:
        return JSONResponse(dict(calls))

    async def last_request(request: Request) -> Response:
        return JSONResponse(last)

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/calls", count),
        Route("/last", last_request),
    ]
    return Starlette(routes=routes)


def _error(status: int, message: str) -> Response:
    kind = _ERROR_TYPES.get(status, "api_error")
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
    return "".join(texts)


def _answer_blocks(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    text = _last_user_text(body)
    if model == "tool-call" and body.get("tools"):
        name = body["tools"][0].get("name", "")
        return [{"type": "tool_use", "id": "toolu_mock", "name": name, "input": {"text": text}}]
    return [{"type": "text", "text": f"echo: {text}"}]


def _message(
    model: str, blocks: list[dict[str, Any]], stop: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": "msg_mock01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


def _events(model: str, blocks: list[dict[str, Any]]) -> Iterator[str]:
    start_usage = {**USAGE, "output_tokens": 1}
    yield _event({"type": "message_start", "message": _message(model, [], None, start_usage)})
    yield _event({"type": "ping"})
    block = blocks[0]
    if block["type"] == "tool_use":
        yield _event({"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}})
        arguments = json.dumps(block["input"])
        pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
    else:
        yield _event(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        )
        text = block["text"]
        pieces = [text[: len(text) // 2], text[len(text) // 2 :]]
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
    yield _event({"type": "content_block_delta", "index": 0, "delta": deltas[0]})
    yield _event({"type": "content_block_delta", "index": 0, "delta": deltas[1]})
    if model == "error-mid":
        yield _event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return
    yield _event({"type": "content_block_stop", "index": 0})
    stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
    delta = {"stop_reason": stop, "stop_sequence": None}
    yield _event(
        {"type": "message_delta", "delta": delta, "usage": {"output_tokens": USAGE["output_tokens"]}}
    )
    if model != "cut":
        yield _event({"type": "message_stop"})


def _event(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
