"""The ``/v1/responses`` front door's request: a Responses request body → a chat-completion request
body (:func:`chat_request_from_responses`).

Translated: ``input`` (a string, or message, ``function_call`` and ``function_call_output`` items),
``instructions`` (→ a system message first), function ``tools``, ``tool_choice``, ``max_output_tokens``
(→ ``max_tokens``), ``temperature``, ``top_p``, ``parallel_tool_calls``, ``text.format`` (→
``response_format``), ``text.verbosity``, ``reasoning.effort`` (→ ``reasoning_effort``), ``stream``,
``user``; ``metadata`` is echoed in the Response, not forwarded. Dropped: ``include``, ``truncation``,
``max_tool_calls``, ``stream_options`` and the ``reasoning`` items of earlier turns. A refusal is
answered as output text. Fields this module does not know (routeyard's ``routing`` among them) pass
through to the chat body, as on the chat route.

Nothing is stored, so what needs state is refused with :class:`UnsupportedFeatureError` (a 400 naming
the field): ``previous_response_id``, ``conversation``, ``store: true``, ``background: true``,
``prompt``, ``item_reference`` items, file ids; and so are the built-in tools (``web_search``,
``file_search``, …). Other malformed input raises :class:`ResponsesTranslationError`.
"""

from __future__ import annotations

from typing import Any

from routeyard.gateway.body_fields import BodyFields
from routeyard.gateway.errors import InvalidRequestError
from routeyard.gateway.wire import content_text


class ResponsesTranslationError(InvalidRequestError):
    """A Responses body that cannot be translated: ``message`` says why, ``param`` names the field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message, param=param)


_FIELDS = BodyFields(ResponsesTranslationError)
"""The body's field checks, raising :class:`ResponsesTranslationError`."""


class UnsupportedFeatureError(ResponsesTranslationError):
    """A Responses feature outside the stateless subset (state, stored objects, built-in tools)."""

    default_code = "unsupported_parameter"


_STATEFUL = {  # field → the value that asks for state (None: any value but null)
    "previous_response_id": None,
    "conversation": None,
    "prompt": None,
    "store": True,
    "background": True,
}
_DROPPED = frozenset({"include", "truncation", "max_tool_calls", "stream_options", "metadata"})
_TRANSLATED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature", "top_p"}
    | {"parallel_tool_calls", "text", "reasoning", "stream", "user"}
    | set(_STATEFUL)
)


def chat_request_from_responses(body: Any) -> dict[str, Any]:
    """The chat-completion request body for a Responses request ``body`` (see the module docstring);
    raises :class:`UnsupportedFeatureError` or :class:`ResponsesTranslationError`."""
    if not isinstance(body, dict):
        raise ResponsesTranslationError("the request body must be a JSON object")
    for name, stateful in _STATEFUL.items():
        value = body.get(name)
        if value is not None and (stateful is None or value == stateful):
            raise UnsupportedFeatureError(
                "is not supported: routeyard's Responses API is stateless (send the whole conversation "
                "in input, and store: false)",
                param=name,
            )
    chat: dict[str, Any] = {k: v for k, v in body.items() if k not in _TRANSLATED | _DROPPED}
    chat["model"] = _FIELDS.string(body.get("model"), "model", non_empty=True)
    chat["messages"] = _instructions(body.get("instructions")) + _chat_messages(body.get("input"))
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = _FIELDS.positive_int(body["max_output_tokens"], "max_output_tokens")
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = _FIELDS.number(body[name], name)
    for name in ("stream", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = _FIELDS.boolean(body[name], name)
    if body.get("user") is not None:
        chat["user"] = _FIELDS.string(body["user"], "user")
    chat.update(_chat_tools(body.get("tools"), body.get("tool_choice")))
    chat.update(_text_options(body.get("text")))
    effort = _object(body.get("reasoning"), "reasoning").get("effort")
    if effort is not None:
        chat["reasoning_effort"] = _FIELDS.string(effort, "reasoning.effort")
    if "tools" not in chat:
        chat.pop("parallel_tool_calls", None)  # a chat upstream refuses it without tools
    return chat


def _instructions(instructions: Any) -> list[dict[str, Any]]:
    if instructions is None or instructions == "":
        return []
    return [{"role": "system", "content": _FIELDS.string(instructions, "instructions")}]


def _chat_messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise ResponsesTranslationError("must be a string or a non-empty list of items", param="input")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        at = f"input[{i}]"
        if not isinstance(item, dict):
            raise ResponsesTranslationError("must be an object", param=at)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_chat_message(item, at))
        elif kind == "function_call":
            _add_tool_call(messages, item, at)
        elif kind == "function_call_output":
            messages.append(_tool_message(item, at))
        elif kind == "item_reference":
            raise UnsupportedFeatureError("item references are not supported: no item is stored", param=at)
        elif kind != "reasoning":
            raise UnsupportedFeatureError(
                f"input items of type {kind!r} are not supported", param=f"{at}.type"
            )
    if not messages:
        raise ResponsesTranslationError("holds no message", param="input")
    return messages


def _chat_message(item: dict[str, Any], at: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise ResponsesTranslationError(
            'must be "user", "system", "developer" or "assistant"', param=f"{at}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list) or not all(isinstance(part, dict) for part in content):
        raise ResponsesTranslationError("must be a string or a list of content parts", param=f"{at}.content")
    parts = [_chat_part(part, f"{at}.content[{j}]") for j, part in enumerate(content)]
    if all(part["type"] == "text" for part in parts) and (role != "user" or len(parts) == 1):
        joiner = "" if role == "assistant" else "\n"  # an answer's output_text parts are one text
        return {"role": role, "content": joiner.join(part["text"] for part in parts)}
    if role != "user":
        raise ResponsesTranslationError(f"a {role} message may hold text only", param=f"{at}.content")
    return {"role": role, "content": parts}


def _chat_part(part: dict[str, Any], at: str) -> dict[str, Any]:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _FIELDS.string(part.get("text"), f"{at}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _FIELDS.string(part.get("refusal"), f"{at}.refusal")}
    if kind == "input_image":
        if part.get("image_url") is None:
            raise UnsupportedFeatureError("images by file_id are not supported; send image_url", param=at)
        image = {"url": _FIELDS.string(part.get("image_url"), f"{at}.image_url", non_empty=True)}
        if part.get("detail") is not None:
            image["detail"] = _FIELDS.string(part["detail"], f"{at}.detail")
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_data") is None:
            raise UnsupportedFeatureError(
                "files by file_id or file_url are not supported; send file_data", param=at
            )
        file = {"file_data": _FIELDS.string(part.get("file_data"), f"{at}.file_data", non_empty=True)}
        if part.get("filename") is not None:
            file["filename"] = _FIELDS.string(part["filename"], f"{at}.filename")
        return {"type": "file", "file": file}
    raise UnsupportedFeatureError(f"content parts of type {kind!r} are not supported", param=f"{at}.type")


def _add_tool_call(messages: list[dict[str, Any]], item: dict[str, Any], at: str) -> None:
    """A function_call item as a tool call of the assistant message it follows (a new one if none)."""
    call = {
        "id": _FIELDS.string(item.get("call_id"), f"{at}.call_id", non_empty=True),
        "type": "function",
        "function": {
            "name": _FIELDS.string(item.get("name"), f"{at}.name", non_empty=True),
            "arguments": _FIELDS.string(item.get("arguments"), f"{at}.arguments"),
        },
    }
    if not messages or messages[-1]["role"] != "assistant":
        messages.append({"role": "assistant", "content": None})
    messages[-1].setdefault("tool_calls", []).append(call)


def _tool_message(item: dict[str, Any], at: str) -> dict[str, Any]:
    output = item.get("output")
    if isinstance(output, list):
        for j, part in enumerate(output):
            if not isinstance(part, dict) or part.get("type") != "input_text":
                raise UnsupportedFeatureError(
                    "parts other than input_text are not supported in a function's output",
                    param=f"{at}.output[{j}]",
                )
        output = content_text(output)
    call_id = _FIELDS.string(item.get("call_id"), f"{at}.call_id", non_empty=True)
    return {"role": "tool", "tool_call_id": call_id, "content": _FIELDS.string(output, f"{at}.output")}


def _chat_tools(tools: Any, tool_choice: Any) -> dict[str, Any]:
    if tools is None or tools == []:
        return {}
    if not isinstance(tools, list):
        raise ResponsesTranslationError("must be a list of tools", param="tools")
    options: dict[str, Any] = {"tools": [_chat_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]}
    if tool_choice in ("auto", "none", "required"):
        options["tool_choice"] = tool_choice
    elif isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = _FIELDS.string(tool_choice.get("name"), "tool_choice.name", non_empty=True)
        options["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif tool_choice is not None:
        raise UnsupportedFeatureError(
            'is not supported; use "auto", "none", "required" or a function '
            '({"type": "function", "name": …})',
            param="tool_choice",
        )
    return options


def _chat_tool(tool: Any, at: str) -> dict[str, Any]:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise UnsupportedFeatureError(
            f"built-in tool {kind!r} is not supported; only function tools are", param=f"{at}.type"
        )
    function: dict[str, Any] = {"name": _FIELDS.string(tool.get("name"), f"{at}.name", non_empty=True)}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _text_options(text: Any) -> dict[str, Any]:
    """``text.format`` as ``response_format`` (none for plain text) and ``text.verbosity``."""
    text = _object(text, "text")
    options: dict[str, Any] = {}
    if text.get("verbosity") is not None:
        options["verbosity"] = text["verbosity"]
    form = _object(text.get("format"), "text.format")
    kind = form.get("type", "text")
    if kind == "json_object":
        options["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {"name": _FIELDS.string(form.get("name"), "text.format.name", non_empty=True)}
        schema |= {key: form[key] for key in ("schema", "strict", "description") if form.get(key) is not None}
        options["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif kind != "text":
        raise UnsupportedFeatureError(f"format {kind!r} is not supported", param="text.format.type")
    return options


def _object(value: Any, param: str) -> dict[str, Any]:
    """``value`` as an object (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResponsesTranslationError("must be an object", param=param)
    return value
