"""The ``/v1/responses`` front door's stream: chat-completion chunks → the Responses stream events, each
with its ``sequence_number`` (:class:`ResponseStreamTranslator`), rendered by :func:`render_event` as
``event: <type>\\ndata: <json>\\n\\n``.
"""

from __future__ import annotations

import time
from typing import Any

from routeyard.gateway.fast_json import dumps, loads
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
        self._ids: ItemIds | None = ItemIds(response_id) if response_id else None
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
        status, details = response_status(self._finish_reason)
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
        return response_object(
            self._request, self._ids.response, self._created_at, self._model, status, output
        )

    def _start(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        self._started = True
        self._ids = self._ids or ItemIds(derived_id(chunk))
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
        delta = lenient_object(choice.get("delta"))
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
            events.append(self._event("response.content_part.added", **where, part=text_part("")))
        assert self._open is not None
        self._open["text"] += text
        where = {"item_id": self._open["id"], "output_index": len(self._output) - 1, "content_index": 0}
        return [*events, self._event("response.output_text.delta", **where, delta=text, logprobs=[])]

    def _tool_call_events(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        function = lenient_object(call.get("function"))
        position = call.get("index", 0) if isinstance(call.get("index"), int) else 0
        events: list[dict[str, Any]] = []
        if position not in self._tool_items:
            assert self._ids is not None
            events += self._close("completed")
            item = function_item(
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
            part = text_part(opened["text"])
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
