"""Anthropic's Messages API in OpenAI's chat-completion shapes, and back: pure functions over JSON dicts.

The front door (a client speaking Anthropic, routed as a chat completion):

- :func:`chat_request_from_messages`: a ``POST /v1/messages`` body → a chat-completion request body;
- :func:`message_from_completion`: a chat completion → an Anthropic ``Message``;
- :class:`MessageStreamTranslator`: chat-completion chunks → Anthropic's stream events, rendered by
  :func:`render_event` as ``event: <type>\\ndata: <json>\\n\\n``;
- :func:`anthropic_error_body`: an OpenAI error body and its status → Anthropic's error body.

The backend side (routeyard calling a native Messages API): :func:`messages_request_from_chat`,
:func:`completion_from_message`, :class:`CompletionChunkTranslator` (Anthropic's stream events →
chat-completion chunks), :func:`openai_error_body`.

What does not carry over: ``top_k``, ``thinking`` and ``service_tier`` are dropped (no chat-completion
counterpart that means the same), and so are thinking blocks of earlier assistant turns; a tool result's
``is_error`` becomes the prefix ``"Error: "`` of its text; images inside a tool result move to a user
message right after the tool messages (chat tool messages hold text only). Fields this module does not
know (routeyard's ``routing`` among them) pass through to the chat body, as on the chat route.

Raises :class:`MessagesTranslationError` (a 400 naming the field) for a body it cannot translate, and
:class:`~routeyard.gateway.errors.UpstreamError` (502) for an upstream answer it cannot read.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from routeyard.gateway.body_fields import BodyFields
from routeyard.gateway.errors import InvalidRequestError, UpstreamError
from routeyard.gateway.fast_json import JSONDecodeError, dumps, loads
from routeyard.gateway.wire import content_text


class MessagesTranslationError(InvalidRequestError):
    """A body that cannot be translated: ``message`` says why, ``param`` names the field (a 400)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message, param=param)


_FIELDS = BodyFields(MessagesTranslationError)
"""The body's field checks, raising :class:`MessagesTranslationError`."""


# ---------------------------------------------------------------------------- Anthropic request → chat

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
    chat["model"] = _FIELDS.string(body.get("model"), "model", non_empty=True)
    chat["messages"] = _system_messages(body.get("system")) + _chat_conversation(body.get("messages"))
    chat["max_tokens"] = _positive_int(body.get("max_tokens"), "max_tokens")
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = _FIELDS.number(body[name], name)
    if body.get("stop_sequences"):
        chat["stop"] = _FIELDS.strings(body["stop_sequences"], "stop_sequences")
    if body.get("stream") is not None:
        chat["stream"] = _FIELDS.boolean(body["stream"], "stream")
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
        media_type = _FIELDS.string(source.get("media_type"), f"{at}.media_type", non_empty=True)
        return f"data:{media_type};base64,{_FIELDS.string(source.get('data'), f'{at}.data', non_empty=True)}"
    if isinstance(source, dict) and source.get("type") == "url":
        return _FIELDS.string(source.get("url"), f"{at}.url", non_empty=True)
    raise MessagesTranslationError('must be a "base64" or "url" source', param=f"{at}.type")


def _chat_document(block: dict[str, Any], at: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text":
        return {"type": "text", "text": _FIELDS.string(source.get("data"), f"{at}.source.data")}
    if isinstance(source, dict) and source.get("type") == "base64":
        filename = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        file = {"filename": filename, "file_data": _image_url(source, f"{at}.source")}
        return {"type": "file", "file": file}
    raise MessagesTranslationError('a document must have a "text" or "base64" source', param=f"{at}.source")


def _chat_tool_result(block: dict[str, Any], at: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool_result block as a tool message, and the image parts it carried (for a user message)."""
    call_id = _FIELDS.string(block.get("tool_use_id"), f"{at}.tool_use_id", non_empty=True)
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
        "name": _FIELDS.string(block.get("name"), f"{at}.name", non_empty=True),
        "arguments": dumps(arguments),
    }
    call_id = _FIELDS.string(block.get("id"), f"{at}.id", non_empty=True)
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
        name = _FIELDS.string(tool_choice.get("name"), "tool_choice.name", non_empty=True)
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
    function: dict[str, Any] = {"name": _FIELDS.string(tool.get("name"), f"{at}.name", non_empty=True)}
    if tool.get("description") is not None:
        function["description"] = _FIELDS.string(tool["description"], f"{at}.description")
    function["parameters"] = schema
    return {"type": "function", "function": function}


def _metadata_user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise MessagesTranslationError("must be an object", param="metadata")
    user = metadata.get("user_id")
    return None if user is None else _FIELDS.string(user, "metadata.user_id")


# ---------------------------------------------------------------------------- chat completion → Message

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
    message = _object(choice.get("message"))
    text = content_text(message.get("content")) or (message.get("refusal") or "")
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not calls else []
    blocks += [_tool_use_block(call) for call in calls]
    stop_reason, stop_sequence = _stop_reason(choice, bool(calls), stop_sequences)
    reply = {
        "id": message_id or _derived_id("msg_", completion),
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
    function = _object(call.get("function"))
    raw = function.get("arguments") or "{}"
    try:
        arguments = loads(raw) if isinstance(raw, str) else raw
    except JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise UpstreamError("the upstream's tool call arguments are not a JSON object")
    call_id = call.get("id") or f"toolu_{secrets.token_hex(12)}"
    return {"type": "tool_use", "id": call_id, "name": function.get("name") or "", "input": arguments}


def _stop_reason(
    choice: dict[str, Any], used_tools: bool, stop_sequences: Sequence[str]
) -> tuple[str, str | None]:
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
    prompt, output = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = min(prompt, _count(details.get("cached_tokens"))) if isinstance(details, dict) else 0
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


def _derived_id(prefix: str, completion: dict[str, Any]) -> str:
    """An id for a translated reply: the completion's own, re-prefixed, so the two can be matched."""
    own = completion.get("id")
    if isinstance(own, str) and own:
        return prefix + own.removeprefix("chatcmpl-")
    return prefix + secrets.token_hex(12)


# ---------------------------------------------------------------------------- chat chunks → Message stream


class MessageStreamTranslator:
    """Chat-completion chunks in, Anthropic stream events out, in Anthropic's order.

    Feed every chunk (as the gateway streams them: the last carries ``usage`` and ``routing``; an
    ``{"error": …}`` chunk ends the stream) to :meth:`translate`, then call :meth:`finish` once; or feed
    the gateway's SSE text, ``[DONE]`` included, to :meth:`translate_sse`. Events: ``message_start``, for
    each text run or tool call ``content_block_start``, ``content_block_delta`` (``text_delta``,
    ``input_json_delta``) and ``content_block_stop``, then ``message_delta`` (stop reason, usage,
    ``routing``) and ``message_stop``; an error chunk gives one ``error`` event and nothing after it.
    Only the first choice is translated (Anthropic has no ``n``).
    """

    def __init__(
        self,
        *,
        model: str = "",
        message_id: str | None = None,
        stop_sequences: Sequence[str] = (),
        input_tokens: int = 0,
    ) -> None:
        """``model`` names the model when the first chunk does not; ``input_tokens`` is what
        ``message_start`` says before the real count arrives at the end."""
        self._model = model
        self._message_id = message_id
        self._stop_sequences = tuple(stop_sequences)
        self._input_tokens = input_tokens
        self._started = self._ended = False
        self._open: int | None = None  # the index of the content block open now
        self._open_is_text = False
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # the chunk's tool call index → its block index
        self._finish: dict[str, Any] = {}
        self._usage: Any = None
        self._routing: Any = None

    def translate(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events ``chunk`` gives (none after the stream ended)."""
        if self._ended:
            return []
        if isinstance(chunk.get("error"), dict) and not chunk.get("choices"):
            self._ended = True
            return [_stream_error(chunk["error"])]
        events = [] if self._started else [self._message_start(chunk)]
        self._started = True
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice_events(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        if "routing" in chunk:
            self._routing = chunk["routing"]
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The closing events: the open block's stop, ``message_delta``, ``message_stop`` (once)."""
        if self._ended:
            return []
        events = [] if self._started else [self._message_start({})]
        self._started, self._ended = True, True
        events += self._close_block()
        stop_reason, stop_sequence = _stop_reason(self._finish, bool(self._tool_blocks), self._stop_sequences)
        usage = anthropic_usage(self._usage)
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": usage if self._usage is not None else {"output_tokens": 0},
        }
        if self._routing is not None:
            delta["routing"] = self._routing
        return [*events, delta, {"type": "message_stop"}]

    def translate_sse(self, event: str) -> bytes:
        """One gateway SSE event (``data: {chunk}`` or ``data: [DONE]``) as rendered Anthropic events."""
        if not event.startswith("data:"):
            return b""
        payload = event[5:].strip()
        events = self.finish() if payload == "[DONE]" else self.translate(loads(payload))
        return b"".join(render_event(e) for e in events)

    def _message_start(self, chunk: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": self._message_id or _derived_id("msg_", chunk),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": chunk.get("model") or self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return {"type": "message_start", "message": message}

    def _choice_events(self, choice: dict[str, Any]) -> list[dict[str, Any]]:
        delta = _object(choice.get("delta"))
        events: list[dict[str, Any]] = []
        text = content_text(delta.get("content")) or (
            delta["refusal"] if isinstance(delta.get("refusal"), str) else ""
        )
        if text:
            events += self._text_events(text)
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                events += self._tool_call_events(call)
        if choice.get("finish_reason") is not None:
            self._finish = {
                "finish_reason": choice["finish_reason"],
                "stop_reason": choice.get("stop_reason"),
            }
        return events

    def _text_events(self, text: str) -> list[dict[str, Any]]:
        events = [] if self._open_is_text else self._open_block({"type": "text", "text": ""}, is_text=True)
        delta = {"type": "text_delta", "text": text}
        return [*events, {"type": "content_block_delta", "index": self._open, "delta": delta}]

    def _tool_call_events(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        function = _object(call.get("function"))
        position = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        events: list[dict[str, Any]] = []
        if position not in self._tool_blocks:
            call_id = call.get("id") or f"toolu_{secrets.token_hex(12)}"
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call_id,
                "name": function.get("name") or "",
                "input": {},
            }
            events += self._open_block(block, is_text=False)
            self._tool_blocks[position] = self._blocks - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            events.append(
                {"type": "content_block_delta", "index": self._tool_blocks[position], "delta": delta}
            )
        return events

    def _open_block(self, block: dict[str, Any], *, is_text: bool) -> list[dict[str, Any]]:
        events = self._close_block()
        self._open, self._open_is_text = self._blocks, is_text
        self._blocks += 1
        return [*events, {"type": "content_block_start", "index": self._open, "content_block": block}]

    def _close_block(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        index, self._open, self._open_is_text = self._open, None, False
        return [{"type": "content_block_stop", "index": index}]


def render_event(event: dict[str, Any]) -> bytes:
    """One Anthropic stream event as server-sent-event bytes: ``event: <type>\\ndata: <json>\\n\\n``."""
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode()


def _stream_error(error: dict[str, Any]) -> dict[str, Any]:
    kind = _ERROR_TYPE_BY_OPENAI_TYPE.get(str(error.get("type")), "api_error")
    return {"type": "error", "error": {"type": kind, "message": str(error.get("message") or "stream failed")}}


# ---------------------------------------------------------------------------- errors

_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_TYPE_BY_OPENAI_TYPE = {  # for an error inside a stream, which has no status of its own
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
    "service_unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "upstream_timeout": "timeout_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error type for an HTTP ``status`` (another 4xx: ``invalid_request_error``; another
    5xx: ``api_error``)."""
    return _ERROR_TYPE_BY_STATUS.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")


def anthropic_error_body(status: int, error_body: Any) -> dict[str, Any]:
    """The Anthropic error body for an OpenAI-shaped ``error_body`` answered with ``status``."""
    error = error_body.get("error") if isinstance(error_body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    text = message if isinstance(message, str) and message else f"request failed with status {status}"
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": text}}


_OPENAI_TYPE_BY_ANTHROPIC_TYPE = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "billing_error": "insufficient_quota",
    "rate_limit_error": "rate_limit_error",
    "timeout_error": "timeout",
    "overloaded_error": "service_unavailable",
}


def openai_error_body(status: int, error_body: Any) -> dict[str, Any]:
    """The OpenAI error body for an Anthropic ``error_body`` answered with ``status`` (the backend side)."""
    error = error_body.get("error") if isinstance(error_body, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or anthropic_error_type(status))
    message = error.get("message") if isinstance(error.get("message"), str) else f"status {status}"
    openai_type = _OPENAI_TYPE_BY_ANTHROPIC_TYPE.get(kind, "server_error")
    return {"error": {"message": message, "type": openai_type, "param": None, "code": kind}}


# ---------------------------------------------------------------------------- chat request → Anthropic

_SAMPLING_HINTS = frozenset(  # chat fields with no Messages counterpart that only tune: dropped
    {"seed", "frequency_penalty", "presence_penalty", "logit_bias", "stream_options", "metadata", "store"}
    | {"service_tier", "user", "prediction", "reasoning_effort", "verbosity", "prompt_cache_key"}
)


def messages_request_from_chat(body: dict[str, Any], *, default_max_tokens: int) -> dict[str, Any]:
    """The Messages request for a chat-completion request ``body`` (as forwarded: no ``routing``):
    system and developer messages joined into ``system``, tool messages as ``tool_result`` blocks of a
    user turn, consecutive turns of one role merged, ``max_tokens`` (else ``default_max_tokens``),
    ``temperature`` clamped to Anthropic's [0, 1]. Raises :class:`MessagesTranslationError` for what a
    Messages API cannot do (``n`` > 1, ``logprobs``, a ``response_format`` other than text, audio)."""
    for name, refused in (("n", lambda v: v not in (None, 1)), ("logprobs", bool), ("audio", bool)):
        if refused(body.get(name)):
            raise MessagesTranslationError("is not supported by an Anthropic backend", param=name)
    format_type = _object(body.get("response_format")).get("type", "text")
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
        request["temperature"] = min(1.0, max(0.0, _FIELDS.number(body["temperature"], "temperature")))
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
        call, function = _object(call), _object(_object(call).get("function"))
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
        function = _object(tool).get("function") if _object(tool).get("type") == "function" else None
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


# ---------------------------------------------------------------------------- Message → chat completion

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


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
    finish = _FINISH_REASONS.get(str(message.get("stop_reason")), "stop")
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
    cached = _count(usage.get("cache_read_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + _count(usage.get("cache_creation_input_tokens")) + cached
    completion = _count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


# ---------------------------------------------------------------------------- Message stream → chat chunks


class CompletionChunkTranslator:
    """Anthropic stream events in (each SSE ``data:`` object), chat-completion chunks out.

    ``message_start`` gives the first chunk (``delta.role``); a text block's deltas become ``content``
    deltas; a tool_use block becomes one tool call (its ``id`` and ``name`` first, then its
    ``input_json_delta`` pieces as ``arguments``); ``message_delta``'s stop reason becomes a chunk with
    the mapped ``finish_reason``; ``message_stop`` gives OpenAI's usage chunk (``choices: []``, usage as
    :func:`openai_usage` reads it) and sets :attr:`ended`. Thinking blocks, ``ping`` and event types this
    class does not know give nothing. Every chunk has ``id``, ``object``, ``created`` and ``model``.
    Raises UpstreamError for an ``error`` event or an event that is not an object with a ``type``.
    """

    def __init__(self, *, model: str = "", created: int | None = None) -> None:
        """``model`` names the chunks when ``message_start`` does not."""
        self.ended = False
        self.usage: dict[str, Any] = {}  # Anthropic's usage so far: message_start's, updated by deltas
        self._id = "chatcmpl-" + secrets.token_hex(12)
        self._model = model
        self._created = int(time.time()) if created is None else created
        self._tool_calls: dict[int, int] = {}  # the block's index → its tool call's index

    def translate(self, event: Any) -> list[dict[str, Any]]:
        """The chunks ``event`` gives (none after ``message_stop``)."""
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise UpstreamError("the upstream sent a stream event that is not an Anthropic event")
        kind = event["type"]
        if kind == "error":
            error = _object(event.get("error"))
            raise UpstreamError(f"the upstream sent an error mid-stream ({error.get('type', 'unknown')})")
        if self.ended:
            return []
        if kind == "message_start":
            return self._message_start(_object(event.get("message")))
        if kind == "content_block_start":
            return self._block_start(event.get("index"), _object(event.get("content_block")))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), _object(event.get("delta")))
        if kind == "message_delta":
            self.usage.update(_object(event.get("usage")))
            reason = _object(event.get("delta")).get("stop_reason")
            finish = _FINISH_REASONS.get(str(reason), "stop") if reason is not None else None
            return [self._chunk({}, finish)] if finish else []
        if kind == "message_stop":
            self.ended = True
            return [{**self._chunk({}), "choices": [], "usage": openai_usage(self.usage)}]
        return []  # ping, content_block_stop, event types added later

    def _message_start(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(message.get("id"), str) and message["id"]:
            self._id = "chatcmpl-" + message["id"].removeprefix("msg_")
        if isinstance(message.get("model"), str) and message["model"]:
            self._model = message["model"]
        self.usage = dict(_object(message.get("usage")))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[dict[str, Any]]:
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk({"content": block["text"]})]
        if block.get("type") != "tool_use" or not isinstance(index, int):
            return []
        position = self._tool_calls.setdefault(index, len(self._tool_calls))
        call = {
            "index": position,
            "id": block.get("id") or f"toolu_{secrets.token_hex(12)}",
            "type": "function",
            "function": {"name": block.get("name") or "", "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and index in self._tool_calls:
            partial = delta.get("partial_json")
            if isinstance(partial, str) and partial:
                call = {"index": self._tool_calls[index], "function": {"arguments": partial}}
                return [self._chunk({"tool_calls": [call]})]
        return []  # thinking, signatures, citations

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


# ---------------------------------------------------------------------------- validation helpers


def _block_list(value: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise MessagesTranslationError("must be a non-empty list of objects", param=param)
    return value


def _object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (reading an upstream's answer leniently)."""
    return value if isinstance(value, dict) else {}


def _text_of(block: dict[str, Any], at: str) -> str:
    if block.get("type") != "text":
        raise MessagesTranslationError("must be a text block", param=f"{at}.type")
    return _FIELDS.string(block.get("text"), f"{at}.text")


def _positive_int(value: Any, param: str) -> int:
    """``max_tokens`` and the like: required, an integer ≥ 1."""
    if value is None:
        raise MessagesTranslationError("is required", param=param)
    return _FIELDS.positive_int(value, param)
