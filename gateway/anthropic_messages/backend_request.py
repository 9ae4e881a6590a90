"""The ``anthropic`` backend kind's request: a chat-completion request body → a Messages API request
(:func:`messages_request_from_chat`). Raises
:class:`~routeyard.gateway.anthropic_messages.errors.MessagesTranslationError` for what a Messages API
cannot do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from routeyard.gateway.anthropic_messages.errors import MessagesTranslationError
from routeyard.gateway.anthropic_messages.fields import FIELDS, lenient_object
from routeyard.gateway.fast_json import JSONDecodeError, loads
from routeyard.gateway.wire import content_text


def messages_request_from_chat(body: dict[str, Any], *, default_max_tokens: int) -> dict[str, Any]:
    """The Messages request for a chat-completion request ``body`` (as forwarded: no ``routing``):
    system and developer messages joined into ``system``, tool messages as ``tool_result`` blocks of a
    user turn, consecutive turns of one role merged, ``max_tokens`` (else ``default_max_tokens``),
    ``temperature`` clamped to Anthropic's [0, 1]. Raises :class:`MessagesTranslationError` for what a
    Messages API cannot do (``n`` > 1, ``logprobs``, a ``response_format`` other than text, audio)."""
    for name, refused in (("n", lambda v: v not in (None, 1)), ("logprobs", bool), ("audio", bool)):
        if refused(body.get(name)):
            raise MessagesTranslationError("is not supported by an Anthropic backend", param=name)
    format_type = lenient_object(body.get("response_format")).get("type", "text")
    if format_type != "text":
        raise MessagesTranslationError(
            f"{format_type!r} is not supported by an Anthropic backend", param="response_format"
        )
    system, turns = _anthropic_turns(body.get("messages") or [])
    request: dict[str, Any] = {"model": body["model"], "messages": turns}
    request["max_tokens"] = body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens
    if system:
        request["system"] = "\n\n".join(system)
    if body.get("temperature") is not None:
        request["temperature"] = min(1.0, max(0.0, FIELDS.number(body["temperature"], "temperature")))
    if body.get("top_p") is not None:
        request["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        request["stream"] = True
    if isinstance(body.get("user"), str):
        request["metadata"] = {"user_id": body["user"]}
    request.update(_anthropic_tools(body))
    return request


def _anthropic_turns(messages: Iterable[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where, role = f"messages[{i}]", message.get("role")
        if role in ("system", "developer"):
            system.append(content_text(message.get("content")))
            continue
        if role == "tool":
            blocks = [_tool_result_block(message, where)]
            role = "user"
        elif role in ("user", "assistant"):
            blocks = _anthropic_blocks(message, where)
        else:
            raise MessagesTranslationError(
                f"role {role!r} is not supported by an Anthropic backend", param=where
            )
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _anthropic_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) and content else content or []
    blocks = [_anthropic_block(part, f"{where}.content[{j}]") for j, part in enumerate(parts)]
    for j, call in enumerate(message.get("tool_calls") or []):
        call, function = lenient_object(call), lenient_object(lenient_object(call).get("function"))
        try:
            arguments = loads(function.get("arguments") or "{}")
        except JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise MessagesTranslationError(
                "must be a JSON object", param=f"{where}.tool_calls[{j}].function.arguments"
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
        )
    return blocks


def _anthropic_block(part: dict[str, Any], at: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("text", "")}
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url", "")
        return {"type": "image", "source": _anthropic_source(url)}
    if kind == "file" and str((part.get("file") or {}).get("file_data", "")).startswith("data:"):
        return {"type": "document", "source": _anthropic_source(part["file"]["file_data"])}
    raise MessagesTranslationError(
        f"content part {kind!r} is not supported by an Anthropic backend", param=at
    )


def _anthropic_source(url: str) -> dict[str, Any]:
    """A URL as an Anthropic source: base64 for a ``data:`` URL, else the URL."""
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}


def _tool_result_block(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise MessagesTranslationError("a tool message needs its tool_call_id", param=f"{where}.tool_call_id")
    return {"type": "tool_result", "tool_use_id": call_id, "content": content_text(message.get("content"))}


def _anthropic_tools(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    if not tools:
        return {}
    converted = []
    for i, tool in enumerate(tools):
        function = (
            lenient_object(tool).get("function") if lenient_object(tool).get("type") == "function" else None
        )
        if not isinstance(function, dict):
            raise MessagesTranslationError("only function tools are supported", param=f"tools[{i}]")
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        described = {"description": function["description"]} if function.get("description") else {}
        converted.append({"name": function.get("name"), **described, "input_schema": schema})
    choice = _anthropic_tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": converted, **({"tool_choice": choice} if choice else {})}


def _anthropic_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    raise MessagesTranslationError("is not supported by an Anthropic backend", param="tool_choice")
