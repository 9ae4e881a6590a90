"""The ``anthropic`` backend kind's stream: Anthropic's stream events → chat-completion chunks
(:class:`CompletionChunkTranslator`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from routeyard.gateway.anthropic_messages.backend_reply import FINISH_REASONS, openai_usage
from routeyard.gateway.anthropic_messages.fields import lenient_object
from routeyard.gateway.errors import UpstreamError


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
            error = lenient_object(event.get("error"))
            raise UpstreamError(f"the upstream sent an error mid-stream ({error.get('type', 'unknown')})")
        if self.ended:
            return []
        if kind == "message_start":
            return self._message_start(lenient_object(event.get("message")))
        if kind == "content_block_start":
            return self._block_start(event.get("index"), lenient_object(event.get("content_block")))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), lenient_object(event.get("delta")))
        if kind == "message_delta":
            self.usage.update(lenient_object(event.get("usage")))
            reason = lenient_object(event.get("delta")).get("stop_reason")
            finish = FINISH_REASONS.get(str(reason), "stop") if reason is not None else None
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
        self.usage = dict(lenient_object(message.get("usage")))
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
