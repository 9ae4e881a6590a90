"""The ``anthropic`` backend kind's whole reply: an Anthropic ``Message`` → a chat completion
(:func:`completion_from_message`); also what the stream maps the same way: usage in OpenAI's terms
(:func:`openai_usage`) and the finish reason of each stop reason (:data:`FINISH_REASONS`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from routeyard.gateway.anthropic_messages.fields import token_count
from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.fast_json import dumps

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic's stop reason → the chat-completion finish reason (another one: ``stop``)."""


def completion_from_message(message: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """The chat completion for an Anthropic ``message``: its text joined, its tool_use blocks as tool
    calls (arguments as JSON text), the finish reason mapped, and usage with ``prompt_tokens`` the sum
    of Anthropic's input, cache-creation and cache-read tokens. Raises UpstreamError when ``message`` is
    not a Message."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamError("the upstream's answer is not an Anthropic message")
    blocks = [block for block in message["content"] if isinstance(block, dict)]
    texts = [
        block["text"]
        for block in blocks
        if block.get("type") == "text" and isinstance(block.get("text"), str)
    ]
    calls = [
        {
            "id": b.get("id"),
            "type": "function",
            "function": {"name": b.get("name"), "arguments": dumps(b.get("input") or {})},
        }
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        reply["tool_calls"] = calls
    finish = FINISH_REASONS.get(str(message.get("stop_reason")), "stop")
    return {
        "id": "chatcmpl-" + str(message.get("id") or secrets.token_hex(12)).removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
        "usage": openai_usage(message.get("usage")),
    }


def openai_usage(usage: Any) -> dict[str, Any]:
    """An Anthropic ``usage`` in OpenAI's terms (prompt tokens include cache creation and reads; the
    reads are ``prompt_tokens_details.cached_tokens``)."""
    usage = usage if isinstance(usage, dict) else {}
    cached = token_count(usage.get("cache_read_input_tokens"))
    prompt = (
        token_count(usage.get("input_tokens"))
        + token_count(usage.get("cache_creation_input_tokens"))
        + cached
    )
    completion = token_count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
