"""The ``/v1/responses`` front door's whole reply: a chat completion → a ``Response`` object
(:func:`response_from_completion`).
"""

from __future__ import annotations

import time
from typing import Any

from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.responses_api.objects import (
    ItemIds,
    derived_id,
    function_item,
    lenient_object,
    response_object,
    response_status,
    responses_usage,
    text_part,
)
from routeyard.gateway.wire import content_text


def response_from_completion(
    completion: dict[str, Any], request: dict[str, Any], *, response_id: str | None = None
) -> dict[str, Any]:
    """The ``Response`` for a chat ``completion`` (its first choice) to the Responses ``request``: a
    message item with the text, a function_call item per tool call, ``status`` ``incomplete`` (with
    ``incomplete_details``) when the answer was cut by ``max_output_tokens`` or a content filter, usage
    in Responses terms, the request's options echoed, and the gateway's ``routing``. Raises
    UpstreamError for a completion without a choice."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("the upstream's completion has no choice")
    ids = ItemIds(response_id or derived_id(completion))
    message = lenient_object(choices[0].get("message"))
    status, details = response_status(choices[0].get("finish_reason"))
    item_status = "incomplete" if status == "incomplete" else "completed"
    text = content_text(message.get("content")) or (message.get("refusal") or "")
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    output = [_message_item(ids.message(), text, item_status)] if text or not calls else []
    for call in calls:
        function = lenient_object(call.get("function"))
        item = function_item(ids.function_call(), call.get("id"), function.get("name"), item_status)
        output.append({**item, "arguments": function.get("arguments") or ""})
    model = completion.get("model") or request.get("model")
    created = completion.get("created") or time.time()
    response = response_object(request, ids.response, created, model, status, output)
    response["incomplete_details"] = details
    response["usage"] = responses_usage(completion.get("usage"))
    if "routing" in completion:
        response["routing"] = completion["routing"]
    return response


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)],
    }
