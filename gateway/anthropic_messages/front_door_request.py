"""The ``/v1/messages`` front door's request: an Anthropic Messages request body → a chat-completion
request body (:func:`chat_request_from_messages`).

What does not carry over: ``top_k``, ``thinking`` and ``service_tier`` are dropped (no chat-completion
counterpart that means the same), and so are thinking blocks of earlier assistant turns; a tool result's
``is_error`` becomes the prefix ``"Error: "`` of its text; images inside a tool result move to a user
message right after the tool messages (chat tool messages hold text only). Fields this module does not
know (routeyard's ``routing`` among them) pass through to the chat body, as on the chat route.

Raises :class:`~routeyard.gateway.anthropic_messages.errors.MessagesTranslationError` (a 400 naming the
field) for a body it cannot translate.
"""

from __future__ import annotations

from typing import Any

from routeyard.gateway.anthropic_messages.errors import MessagesTranslationError
from routeyard.gateway.anthropic_messages.fields import FIELDS
from routeyard.gateway.fast_json import dumps

_DROPPED = frozenset({"top_k", "thinking", "service_tier"})
_TRANSLATED = frozenset(
    {"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "tools"}
    | {"tool_choice", "stream", "metadata"}
)


def chat_request_from_messages(body: Any) -> dict[str, Any]:
    """The chat-completion request body for an Anthropic Messages request ``body``: system first, each
    turn's blocks as chat messages, ``max_tokens``, ``stop``, function tools, ``tool_choice``, ``user``;
    unknown fields (``routing``) pass through. Raises :class:`MessagesTranslationError`."""
    if not isinstance(body, dict):
        raise MessagesTranslationError("the request body must be a JSON object")
    chat: dict[str, Any] = {k: v for k, v in body.items() if k not in _TRANSLATED | _DROPPED}
    chat["model"] = FIELDS.string(body.get("model"), "model", non_empty=True)
    chat["messages"] = _system_messages(body.get("system")) + _chat_conversation(body.get("messages"))
    chat["max_tokens"] = _positive_int(body.get("max_tokens"), "max_tokens")
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = FIELDS.number(body[name], name)
    if body.get("stop_sequences"):
        chat["stop"] = FIELDS.strings(body["stop_sequences"], "stop_sequences")
    if body.get("stream") is not None:
        chat["stream"] = FIELDS.boolean(body["stream"], "stream")
    chat.update(_chat_tools(body.get("tools"), body.get("tool_choice")))
    user = _metadata_user(body.get("metadata"))
    if user is not None:
        chat["user"] = user
    return chat


def _system_messages(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "" or system == []:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    blocks = _block_list(system, "system")
    texts = [_text_of(block, f"system[{i}]") for i, block in enumerate(blocks)]
    return [{"role": "system", "content": "\n".join(texts)}]


def _chat_conversation(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise MessagesTranslationError("must be a non-empty list of messages", param="messages")
    chat: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise MessagesTranslationError("must be an object with role and content", param=where)
        role, content = message.get("role"), message.get("content")
        if role == "user":
            chat += _chat_user_turn(content, where)
        elif role == "assistant":
            chat.append(_chat_assistant_turn(content, where))
        else:
            raise MessagesTranslationError('must be "user" or "assistant"', param=f"{where}.role")
    return chat


def _chat_user_turn(content: Any, where: str) -> list[dict[str, Any]]:
    """A user turn: its tool results as tool messages first, then the rest as one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(_block_list(content, f"{where}.content")):
        at = f"{where}.content[{j}]"
        if block.get("type") == "tool_result":
            message, images = _chat_tool_result(block, at)
            tool_messages.append(message)
            parts += images
        else:
            parts.append(_chat_part(block, at))
    if not parts:
        return tool_messages
    single_text = len(parts) == 1 and parts[0]["type"] == "text"
    return [*tool_messages, {"role": "user", "content": parts[0]["text"] if single_text else parts}]


def _chat_part(block: dict[str, Any], at: str) -> dict[str, Any]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": _text_of(block, at)}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block.get("source"), f"{at}.source")}}
    if kind == "document":
        return _chat_document(block, at)
    raise MessagesTranslationError(f"content block type {kind!r} is not supported here", param=f"{at}.type")


def _image_url(source: Any, at: str) -> str:
    """An image source as a URL: a ``data:`` URL for base64 data, the URL itself for a ``url`` source."""
    if isinstance(source, dict) and source.get("type") == "base64":
        media_type = FIELDS.string(source.get("media_type"), f"{at}.media_type", non_empty=True)
        return f"data:{media_type};base64,{FIELDS.string(source.get('data'), f'{at}.data', non_empty=True)}"
    if isinstance(source, dict) and source.get("type") == "url":
        return FIELDS.string(source.get("url"), f"{at}.url", non_empty=True)
    raise MessagesTranslationError('must be a "base64" or "url" source', param=f"{at}.type")


def _chat_document(block: dict[str, Any], at: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return {"type": "text", "text": FIELDS.string(source.get("data"), f"{at}.source.data")}
    if isinstance(source, dict) and source.get("type") == "base64":
        filename = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        file = {"filename": filename, "file_data": _image_url(source, f"{at}.source")}
        return {"type": "file", "file": file}
    raise MessagesTranslationError('a document must have a "text" or "base64" source', param=f"{at}.source")


def _chat_tool_result(block: dict[str, Any], at: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool_result block as a tool message, and the image parts it carried (for a user message)."""
    call_id = FIELDS.string(block.get("tool_use_id"), f"{at}.tool_use_id", non_empty=True)
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif content not in (None, []):
        for k, part in enumerate(_block_list(content, f"{at}.content")):
            converted = _chat_part(part, f"{at}.content[{k}]")
            if converted["type"] == "text":
                texts.append(converted["text"])
            else:
                images.append(converted)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _chat_assistant_turn(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_block_list(content, f"{where}.content")):
        at, kind = f"{where}.content[{j}]", block.get("type")
        if kind == "text":
            texts.append(_text_of(block, at))
        elif kind == "tool_use":
            calls.append(_chat_tool_call(block, at))
        elif kind not in ("thinking", "redacted_thinking"):
            raise MessagesTranslationError(f"{kind!r} blocks are not supported in assistant turns", param=at)
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _chat_tool_call(block: dict[str, Any], at: str) -> dict[str, Any]:
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise MessagesTranslationError("must be an object", param=f"{at}.input")
    function = {
        "name": FIELDS.string(block.get("name"), f"{at}.name", non_empty=True),
        "arguments": dumps(arguments),
    }
    call_id = FIELDS.string(block.get("id"), f"{at}.id", non_empty=True)
    return {"id": call_id, "type": "function", "function": function}


def _chat_tools(tools: Any, tool_choice: Any) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` of the chat body (none without tools: a chat
    upstream refuses a tool choice without tools)."""
    if tools is None or tools == []:
        return {}
    chat_tools = [_chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(_block_list(tools, "tools"))]
    options: dict[str, Any] = {"tools": chat_tools}
    if tool_choice is None:
        return options
    if not isinstance(tool_choice, dict):
        raise MessagesTranslationError("must be an object with a type", param="tool_choice")
    kind = tool_choice.get("type")
    simple = {"auto": "auto", "any": "required", "none": "none"}
    if kind in simple:
        options["tool_choice"] = simple[kind]
    elif kind == "tool":
        name = FIELDS.string(tool_choice.get("name"), "tool_choice.name", non_empty=True)
        options["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise MessagesTranslationError('must be "auto", "any", "tool" or "none"', param="tool_choice.type")
    if tool_choice.get("disable_parallel_tool_use") is True:
        options["parallel_tool_calls"] = False
    return options


def _chat_tool(tool: dict[str, Any], at: str) -> dict[str, Any]:
    if tool.get("type") not in (None, "custom"):
        raise MessagesTranslationError(
            f"server tool {tool.get('type')!r} is not supported; only client tools "
            "(name, description, input_schema) are",
            param=f"{at}.type",
        )
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        raise MessagesTranslationError("must be a JSON schema object", param=f"{at}.input_schema")
    function: dict[str, Any] = {"name": FIELDS.string(tool.get("name"), f"{at}.name", non_empty=True)}
    if tool.get("description") is not None:
        function["description"] = FIELDS.string(tool["description"], f"{at}.description")
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _metadata_user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise MessagesTranslationError("must be an object", param="metadata")
    user = metadata.get("user_id")
    return None if user is None else FIELDS.string(user, "metadata.user_id")


def _block_list(value: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise MessagesTranslationError("must be a non-empty list of objects", param=param)
    return value


def _text_of(block: dict[str, Any], at: str) -> str:
    if block.get("type") != "text":
        raise MessagesTranslationError("must be a text block", param=f"{at}.type")
    return FIELDS.string(block.get("text"), f"{at}.text")


def _positive_int(value: Any, param: str) -> int:
    """``max_tokens`` and the like: required, an integer ≥ 1."""
    if value is None:
        raise MessagesTranslationError("is required", param=param)
    return FIELDS.positive_int(value, param)
