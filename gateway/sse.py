"""Server-sent events as OpenAI streams them: one ``data:`` event per chunk, then ``data: [DONE]``.

:func:`sse` formats one event; :func:`completion_chunks` turns a whole completion into the chunks a
streaming client expects (each choice's message as a delta, then a last chunk with the finish reasons,
``usage`` and ``routing``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from routeyard.gateway.fast_json import dumps

SSE_DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    """One server-sent event carrying ``payload`` as compact JSON."""
    return f"data: {dumps(payload)}\n\n"


def completion_chunks(body: dict[str, Any]) -> Iterator[str]:
    """A whole completion ``body`` (with ``model`` and ``routing``) as OpenAI chunk events: each choice's
    message, then the finish with usage and routing, then :data:`SSE_DONE`."""
    base = {"id": body.get("id"), "object": "chat.completion.chunk", "created": body.get("created", 0)}
    base["model"] = body["model"]
    choices = [c for c in body.get("choices", []) if isinstance(c, dict)]
    for choice in choices:
        yield sse({**base, "choices": [{"index": choice.get("index", 0), "delta": _delta(choice)}]})
    finish = [
        {"index": c.get("index", 0), "delta": {}, "finish_reason": c.get("finish_reason")} for c in choices
    ]
    yield sse({**base, "choices": finish, "usage": body.get("usage"), "routing": body["routing"]})
    yield SSE_DONE


def _delta(choice: dict[str, Any]) -> dict[str, Any]:
    """A choice's message as a chunk's delta: role (``assistant`` if none), content, refusal, tool calls."""
    message = choice.get("message") or {}
    delta = {key: message[key] for key in ("role", "content", "refusal") if message.get(key) is not None}
    delta.setdefault("role", "assistant")
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
    return delta
