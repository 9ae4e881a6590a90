"""OpenAI's Responses API, stateless subset, in chat-completion shapes: pure functions over JSON dicts.

- :func:`chat_request_from_responses`: a ``POST /v1/responses`` body → a chat-completion request body;
- :func:`response_from_completion`: a chat completion → a ``Response`` object;
- :class:`ResponseStreamTranslator`: chat-completion chunks → the Responses stream events (each with its
  ``sequence_number``), rendered by :func:`render_event` as ``event: <type>\\ndata: <json>\\n\\n``.

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

import secrets
import time
from typing import Any

from routeyard.gateway.body_fields import BodyFields
from routeyard.gateway.errors import InvalidRequestError, UpstreamError
from routeyard.gateway.fast_json import dumps, loads
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


# ---------------------------------------------------------------------------- request → chat

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


# ---------------------------------------------------------------------------- completion → Response


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
    ids = _ItemIds(response_id or _derived_id(completion))
    message = _lenient(choices[0].get("message"))
    status, details = _status(choices[0].get("finish_reason"))
    item_status = "incomplete" if status == "incomplete" else "completed"
    text = content_text(message.get("content")) or (message.get("refusal") or "")
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    output = [_message_item(ids.message(), text, item_status)] if text or not calls else []
    for call in calls:
        function = _lenient(call.get("function"))
        item = _function_item(ids.function_call(), call.get("id"), function.get("name"), item_status)
        output.append({**item, "arguments": function.get("arguments") or ""})
    model = completion.get("model") or request.get("model")
    created = completion.get("created") or time.time()
    response = _response(request, ids.response, created, model, status, output)
    response["incomplete_details"] = details
    response["usage"] = responses_usage(completion.get("usage"))
    if "routing" in completion:
        response["routing"] = completion["routing"]
    return response


def _status(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _response(
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


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(text)],
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _function_item(item_id: str, call_id: Any, name: Any, status: str) -> dict[str, Any]:
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{secrets.token_hex(12)}"
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name or ""}


def responses_usage(usage: Any) -> dict[str, Any]:
    """An OpenAI chat ``usage`` in Responses terms (zeros when absent)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, output = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt_details = _lenient(usage.get("prompt_tokens_details"))
    output_details = _lenient(usage.get("completion_tokens_details"))
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


def _derived_id(completion: dict[str, Any]) -> str:
    """The response's id: the completion's own, re-prefixed, so the two can be matched."""
    own = completion.get("id")
    return "resp_" + (
        own.removeprefix("chatcmpl-") if isinstance(own, str) and own else secrets.token_hex(12)
    )


class _ItemIds:
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


# ---------------------------------------------------------------------------- chunks → Responses events


class ResponseStreamTranslator:
    """Chat-completion chunks in, Responses stream events out, numbered by ``sequence_number``.

    Feed every chunk (the gateway's last carries ``usage`` and ``routing``; an ``{"error": …}`` chunk ends
    the stream) to :meth:`translate`, then call :meth:`finish` once; or feed the gateway's SSE text,
    ``[DONE]`` included, to :meth:`translate_sse`. Events: ``response.created``, ``response.in_progress``;
    per text run ``response.output_item.added``, ``response.content_part.added``,
    ``response.output_text.delta``…, ``response.output_text.done``, ``response.content_part.done``,
    ``response.output_item.done``; per tool call ``response.output_item.added``,
    ``response.function_call_arguments.delta``…, ``response.function_call_arguments.done``,
    ``response.output_item.done``; then ``response.completed`` (``response.incomplete`` when cut short)
    with the whole Response. An error chunk gives ``error`` and ``response.failed``, and nothing after.
    """

    def __init__(self, request: dict[str, Any], *, response_id: str | None = None) -> None:
        """``request`` is the Responses request (its options are echoed in every Response snapshot)."""
        self._request = request
        self._ids: _ItemIds | None = _ItemIds(response_id) if response_id else None
        self._sequence = 0
        self._created_at: float = 0.0
        self._model: Any = request.get("model")
        self._output: list[dict[str, Any]] = []  # the items, done or open
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._tool_items: dict[int, int] = {}  # the chunk's tool call index → its output index
        self._finish_reason: Any = None
        self._usage: Any = None
        self._routing: Any = None
        self._started = self._ended = False

    def translate(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events ``chunk`` gives (none after the stream ended)."""
        if self._ended:
            return []
        events = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("error"), dict) and not chunk.get("choices"):
            return events + self._fail(chunk["error"])
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice_events(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        if "routing" in chunk:
            self._routing = chunk["routing"]
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The closing events: the open item's, then ``response.completed`` or ``response.incomplete``."""
        if self._ended:
            return []
        events = [] if self._started else self._start({})
        status, details = _status(self._finish_reason)
        events += self._close(status)
        self._ended = True
        response = self._snapshot(status)
        response["incomplete_details"] = details
        response["usage"] = responses_usage(self._usage)
        if self._routing is not None:
            response["routing"] = self._routing
        return [*events, self._event(f"response.{status}", response=response)]

    def translate_sse(self, event: str) -> bytes:
        """One gateway SSE event (``data: {chunk}`` or ``data: [DONE]``) as rendered Responses events."""
        if not event.startswith("data:"):
            return b""
        payload = event[5:].strip()
        events = self.finish() if payload == "[DONE]" else self.translate(loads(payload))
        return b"".join(render_event(e) for e in events)

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._sequence += 1
        return {"type": kind, "sequence_number": self._sequence - 1, **fields}

    def _snapshot(self, status: str) -> dict[str, Any]:
        assert self._ids is not None  # set by _start
        output = [dict(item) for item in self._output]
        return _response(self._request, self._ids.response, self._created_at, self._model, status, output)

    def _start(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        self._started = True
        self._ids = self._ids or _ItemIds(_derived_id(chunk))
        self._created_at = chunk.get("created") or time.time()
        self._model = chunk.get("model") or self._model
        created = self._event("response.created", response=self._snapshot("in_progress"))
        return [created, self._event("response.in_progress", response=self._snapshot("in_progress"))]

    def _fail(self, error: dict[str, Any]) -> list[dict[str, Any]]:
        self._ended = True
        message = str(error.get("message") or "stream failed")
        code = "rate_limit_exceeded" if error.get("type") == "rate_limit_error" else "server_error"
        failed = self._snapshot("failed")
        failed["error"] = {"code": code, "message": message}
        error_event = self._event("error", code=error.get("code"), message=message, param=error.get("param"))
        return [error_event, self._event("response.failed", response=failed)]

    def _choice_events(self, choice: dict[str, Any]) -> list[dict[str, Any]]:
        delta = _lenient(choice.get("delta"))
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
            self._finish_reason = choice["finish_reason"]
        return events

    def _text_events(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != "message":
            assert self._ids is not None
            events += self._close("completed")
            item = {
                "id": self._ids.message(),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
            }
            events += self._add({**item, "content": []}, text="")
            where = {"item_id": item["id"], "output_index": len(self._output) - 1, "content_index": 0}
            events.append(self._event("response.content_part.added", **where, part=_text_part("")))
        assert self._open is not None
        self._open["text"] += text
        where = {"item_id": self._open["id"], "output_index": len(self._output) - 1, "content_index": 0}
        return [*events, self._event("response.output_text.delta", **where, delta=text, logprobs=[])]

    def _tool_call_events(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        function = _lenient(call.get("function"))
        position = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        events: list[dict[str, Any]] = []
        if position not in self._tool_items:
            assert self._ids is not None
            events += self._close("completed")
            item = _function_item(
                self._ids.function_call(), call.get("id"), function.get("name"), "in_progress"
            )
            events += self._add({**item, "arguments": ""})
            self._tool_items[position] = len(self._output) - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            index = self._tool_items[position]
            item = self._output[index]
            item["arguments"] += arguments
            where = {"item_id": item["id"], "output_index": index}
            events.append(self._event("response.function_call_arguments.delta", **where, delta=arguments))
        return events

    def _add(self, item: dict[str, Any], **streamed: str) -> list[dict[str, Any]]:
        """Open ``item`` (what it streams, ``text`` or ``arguments``, starts empty)."""
        self._output.append(item)
        self._open = {"id": item["id"], "type": item["type"], **streamed}
        return [
            self._event("response.output_item.added", output_index=len(self._output) - 1, item=dict(item))
        ]

    def _close(self, status: str) -> list[dict[str, Any]]:
        """The done events of the open item, which gets ``status``."""
        if self._open is None:
            return []
        index, opened, self._open = len(self._output) - 1, self._open, None
        item = self._output[index]
        item["status"] = status
        where = {"item_id": item["id"], "output_index": index}
        if opened["type"] == "message":
            part = _text_part(opened["text"])
            item["content"] = [part]
            events = [
                self._event(
                    "response.output_text.done", **where, content_index=0, text=opened["text"], logprobs=[]
                ),
                self._event("response.content_part.done", **where, content_index=0, part=part),
            ]
        else:
            events = [
                self._event("response.function_call_arguments.done", **where, arguments=item["arguments"])
            ]
        return [*events, self._event("response.output_item.done", output_index=index, item=dict(item))]


def render_event(event: dict[str, Any]) -> bytes:
    """One Responses stream event as server-sent-event bytes: ``event: <type>\\ndata: <json>\\n\\n``."""
    return f"event: {event['type']}\ndata: {dumps(event)}\n\n".encode()


# ---------------------------------------------------------------------------- validation helpers


def _object(value: Any, param: str) -> dict[str, Any]:
    """``value`` as an object (None: an empty one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResponsesTranslationError("must be an object", param=param)
    return value


def _lenient(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (reading an upstream's answer leniently)."""
    return value if isinstance(value, dict) else {}
