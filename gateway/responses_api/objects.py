"""What a whole reply and a stream build alike: the ``Response`` object (:func:`response_object`), its
status (:func:`response_status`), output items (:func:`text_part`, :func:`function_item`) and their ids
(:class:`ItemIds`, from :func:`derived_id`), usage in Responses terms (:func:`responses_usage`); and
:func:`lenient_object`, which both use to read a completion leniently.
"""

from __future__ import annotations

import secrets
from typing import Any


def response_status(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    """The Response's ``status`` and ``incomplete_details`` for a chat ``finish_reason``."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    request: dict[str, Any], response_id: str, created_at: float, model: Any, status: str, output: list[Any]
) -> dict[str, Any]:
    """A Response object: ``output`` and ``status`` as given, the request's options echoed."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "metadata": request.get("metadata") or {},
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "temperature": request.get("temperature"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
    }


def text_part(text: str) -> dict[str, Any]:
    """A message item's ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_item(item_id: str, call_id: Any, name: Any, status: str) -> dict[str, Any]:
    """A ``function_call`` output item, without its ``arguments`` (a fresh ``call_id`` when none)."""
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{secrets.token_hex(12)}"
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name or ""}


def responses_usage(usage: Any) -> dict[str, Any]:
    """An OpenAI chat ``usage`` in Responses terms (zeros when absent)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, output = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt_details = lenient_object(usage.get("prompt_tokens_details"))
    output_details = lenient_object(usage.get("completion_tokens_details"))
    return {
        "input_tokens": prompt,
        # chat usage has no cache writes: 0 (the openai SDK ≥ 3 requires the field)
        "input_tokens_details": {
            "cached_tokens": _count(prompt_details.get("cached_tokens")),
            "cache_write_tokens": 0,
        },
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": _count(output_details.get("reasoning_tokens"))},
        "total_tokens": prompt + output,
    }


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def derived_id(completion: dict[str, Any]) -> str:
    """The response's id: the completion's own, re-prefixed, so the two can be matched."""
    own = completion.get("id")
    return "resp_" + (
        own.removeprefix("chatcmpl-") if isinstance(own, str) and own else secrets.token_hex(12)
    )


class ItemIds:
    """The ids of one response's output items, derived from its id: ``resp_X`` → messages ``msg_X``,
    ``msg_X_1``…, function calls ``fc_X_0``, ``fc_X_1``…"""

    def __init__(self, response_id: str) -> None:
        self.response = response_id
        self._base = response_id.removeprefix("resp_")
        self._messages = self._calls = 0

    def message(self) -> str:
        self._messages += 1
        return f"msg_{self._base}" + (f"_{self._messages - 1}" if self._messages > 1 else "")

    def function_call(self) -> str:
        self._calls += 1
        return f"fc_{self._base}_{self._calls - 1}"


def lenient_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (reading an upstream's answer leniently)."""
    return value if isinstance(value, dict) else {}
