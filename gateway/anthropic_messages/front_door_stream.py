"""The ``/v1/messages`` front door's stream: chat-completion chunks → Anthropic's stream events
(:class:`MessageStreamTranslator`), rendered by :func:`render_event` as
``event: <type>\\ndata: <json>\\n\\n``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from routeyard.gateway.anthropic_messages.errors import anthropic_error_event
from routeyard.gateway.anthropic_messages.fields import lenient_object
from routeyard.gateway.anthropic_messages.front_door_reply import (
    anthropic_stop_reason,
    anthropic_usage,
    derived_id,
)
from routeyard.gateway.fast_json import dumps, loads
from routeyard.gateway.wire import content_text


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
            return [anthropic_error_event(chunk["error"])]
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
        stop_reason, stop_sequence = anthropic_stop_reason(
            self._finish, bool(self._tool_blocks), self._stop_sequences
        )
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
            "id": self._message_id or derived_id("msg_", chunk),
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
        function = lenient_object(call.get("function"))
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
