"""The ``/v1/messages`` front door's whole reply: a chat completion → an Anthropic ``Message``
(:func:`message_from_completion`); also what the stream's last events say the same way: the stop reason
(:func:`anthropic_stop_reason`), usage in Anthropic's terms (:func:`anthropic_usage`) and the message's
id (:func:`derived_id`).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from routeyard.gateway.anthropic_messages.fields import lenient_object, token_count
from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.fast_json import JSONDecodeError, loads
from routeyard.gateway.wire import content_text

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_from_completion(
    completion: dict[str, Any], *, stop_sequences: Sequence[str] = (), message_id: str | None = None
) -> dict[str, Any]:
    """The Anthropic ``Message`` for a chat ``completion`` (its first choice): text and tool_use blocks
    (arguments parsed), the stop reason mapped (``stop_sequence`` when the upstream says which of
    ``stop_sequences`` matched, as vLLM's ``stop_reason`` does), usage in Anthropic's terms and the
    gateway's ``routing`` object. Raises UpstreamError for a completion without a choice or with tool
    arguments that are not a JSON object."""
    choice = _first_choice(completion)
    message = lenient_object(choice.get("message"))
    text = content_text(message.get("content")) or (message.get("refusal") or "")
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not calls else []
    blocks += [_tool_use_block(call) for call in calls]
    stop_reason, stop_sequence = anthropic_stop_reason(choice, bool(calls), stop_sequences)
    reply = {
        "id": message_id or derived_id("msg_", completion),
        "type": "message",
        "role": "assistant",
        "content": blocks,
        "model": completion.get("model"),
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": anthropic_usage(completion.get("usage")),
    }
    if "routing" in completion:
        reply["routing"] = completion["routing"]
    return reply


def _first_choice(completion: dict[str, Any]) -> dict[str, Any]:
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("the upstream's completion has no choice")
    choice: dict[str, Any] = choices[0]
    return choice


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    function = lenient_object(call.get("function"))
    raw = function.get("arguments") or "{}"
    try:
        arguments = loads(raw) if isinstance(raw, str) else raw
    except JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise UpstreamError("the upstream's tool call arguments are not a JSON object")
    call_id = call.get("id") or f"toolu_{secrets.token_hex(12)}"
    return {"type": "tool_use", "id": call_id, "name": function.get("name") or "", "input": arguments}


def anthropic_stop_reason(
    choice: dict[str, Any], used_tools: bool, stop_sequences: Sequence[str]
) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for a chat ``choice`` (its ``finish_reason``,
    and the matched stop sequence when the upstream names it in ``stop_reason``); ``tool_use`` when the
    answer called tools."""
    finish, matched = choice.get("finish_reason"), choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    if used_tools and finish in ("stop", None):
        return "tool_use", None
    return _STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn", None


def anthropic_usage(usage: Any) -> dict[str, int]:
    """An OpenAI ``usage`` in Anthropic's terms: ``input_tokens`` excludes the cached prompt tokens,
    which are ``cache_read_input_tokens`` (Anthropic's total input is their sum); zeros when absent."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, output = token_count(usage.get("prompt_tokens")), token_count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = min(prompt, token_count(details.get("cached_tokens"))) if isinstance(details, dict) else 0
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def derived_id(prefix: str, completion: dict[str, Any]) -> str:
    """An id for a translated reply: the completion's own, re-prefixed, so the two can be matched."""
    own = completion.get("id")
    if isinstance(own, str) and own:
        return prefix + own.removeprefix("chatcmpl-")
    return prefix + secrets.token_hex(12)
