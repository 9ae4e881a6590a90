"""Anthropic Messages ⇄ OpenAI chat completions (routeyard.gateway.anthropic_messages), table-driven.

The official ``anthropic`` SDK is not installed in this environment, so what the package produces is
checked against :class:`Shapes`: pydantic models that copy the SDK's ``Message``, ``RawMessageStreamEvent``
and ``ErrorResponse`` (anthropic-sdk-python ``src/anthropic/types``), stricter than the SDK (no unknown
field but ``routing``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, cast

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from routeyard.gateway.anthropic_messages.backend_reply import completion_from_message
from routeyard.gateway.anthropic_messages.backend_request import messages_request_from_chat
from routeyard.gateway.anthropic_messages.backend_stream import CompletionChunkTranslator
from routeyard.gateway.anthropic_messages.errors import (
    MessagesTranslationError,
    anthropic_error_body,
    openai_error_body,
)
from routeyard.gateway.anthropic_messages.front_door_reply import message_from_completion
from routeyard.gateway.anthropic_messages.front_door_request import chat_request_from_messages
from routeyard.gateway.anthropic_messages.front_door_stream import MessageStreamTranslator, render_event
from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.sse import completion_chunks
from routeyard.gateway.wire import ChatCompletionRequest

# ------------------------------------------------------------------ the SDK's shapes, copied


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Usage(_Strict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class TextBlock(_Strict):
    type: Literal["text"]
    text: str


class ToolUseBlock(_Strict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ContentBlock = Annotated[TextBlock | ToolUseBlock, Field(discriminator="type")]
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


class Message(_Strict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[ContentBlock]
    model: str
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage
    routing: dict[str, Any] | None = None  # routeyard's own, allowed by the SDK's extra="allow"


class MessageStart(_Strict):
    type: Literal["message_start"]
    message: Message


class ContentBlockStart(_Strict):
    type: Literal["content_block_start"]
    index: int
    content_block: ContentBlock


class TextDelta(_Strict):
    type: Literal["text_delta"]
    text: str


class InputJSONDelta(_Strict):
    type: Literal["input_json_delta"]
    partial_json: str


class ContentBlockDelta(_Strict):
    type: Literal["content_block_delta"]
    index: int
    delta: Annotated[TextDelta | InputJSONDelta, Field(discriminator="type")]


class ContentBlockStop(_Strict):
    type: Literal["content_block_stop"]
    index: int


class DeltaUsage(_Strict):
    output_tokens: int
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessageDeltaBody(_Strict):
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None


class MessageDelta(_Strict):
    type: Literal["message_delta"]
    delta: MessageDeltaBody
    usage: DeltaUsage
    routing: dict[str, Any] | None = None


class MessageStop(_Strict):
    type: Literal["message_stop"]


ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
]


class ErrorObject(_Strict):
    type: ErrorType
    message: str


class ErrorResponse(_Strict):
    type: Literal["error"]
    error: ErrorObject


StreamEvent = Annotated[
    MessageStart
    | ContentBlockStart
    | ContentBlockDelta
    | ContentBlockStop
    | MessageDelta
    | MessageStop
    | ErrorResponse,
    Field(discriminator="type"),
]
EVENT = TypeAdapter(StreamEvent)


def accumulated(events: list[dict[str, Any]]) -> Message:
    """The message a client builds from ``events``, as the SDK's ``accumulate_event`` does (JSON deltas
    parsed at their block's stop), each event validated against its type and order first."""
    parsed = [EVENT.validate_python(event) for event in events]
    assert isinstance(parsed[0], MessageStart) and isinstance(parsed[-1], MessageStop)
    message = parsed[0].message.model_dump()
    partial: dict[int, str] = {}
    open_blocks: set[int] = set()
    for event in parsed[1:-1]:
        if isinstance(event, ContentBlockStart):
            assert event.index == len(message["content"]) and not open_blocks
            message["content"].append(event.content_block.model_dump())
            open_blocks.add(event.index)
        elif isinstance(event, ContentBlockDelta):
            assert event.index in open_blocks
            if isinstance(event.delta, TextDelta):
                message["content"][event.index]["text"] += event.delta.text
            else:
                partial[event.index] = partial.get(event.index, "") + event.delta.partial_json
        elif isinstance(event, ContentBlockStop):
            open_blocks.remove(event.index)
            if event.index in partial:
                message["content"][event.index]["input"] = json.loads(partial[event.index])
        elif isinstance(event, MessageDelta):
            assert not open_blocks
            message.update(event.delta.model_dump(), routing=event.routing)
            message["usage"].update(event.usage.model_dump(exclude_none=True))
    return Message.model_validate(message)


# ------------------------------------------------------------------ requests: Anthropic → chat

USER_HI = [{"role": "user", "content": "hi"}]
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {"name": "weather", "description": "the weather", "input_schema": WEATHER_SCHEMA}
CHAT_WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "weather", "description": "the weather", "parameters": WEATHER_SCHEMA},
}

REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "minimal",
        {"model": "auto", "max_tokens": 16, "messages": USER_HI},
        {"model": "auto", "max_tokens": 16, "messages": USER_HI},
    ),
    (
        "system string, sampling, stop sequences, stream, user, routing passes, top_k dropped",
        {
            "model": "router-a",
            "max_tokens": 100,
            "system": "be brief",
            "messages": USER_HI,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["\n\nHuman:", "END"],
            "stream": True,
            "metadata": {"user_id": "u-1"},
            "routing": {"willingness_to_pay": 2.5, "exclude": ["big"]},
        },
        {
            "model": "router-a",
            "max_tokens": 100,
            "messages": [{"role": "system", "content": "be brief"}, *USER_HI],
            "temperature": 0.2,
            "top_p": 0.9,
            "stop": ["\n\nHuman:", "END"],
            "stream": True,
            "user": "u-1",
            "routing": {"willingness_to_pay": 2.5, "exclude": ["big"]},
        },
    ),
    (
        "system as text blocks with cache_control; a single text block becomes a string",
        {
            "model": "m",
            "max_tokens": 5,
            "system": [
                {"type": "text", "text": "rule one", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "rule two"},
            ],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "system", "content": "rule one\nrule two"},
                {"role": "user", "content": "hello"},
            ],
        },
    ),
    (
        "images, base64 and url, stay parts next to the text",
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                        {"type": "text", "text": "what are these?"},
                    ],
                }
            ],
        },
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "text", "text": "what are these?"},
                    ],
                }
            ],
        },
    ),
    (
        "a tool loop: tools, tool_choice any, tool_use with JSON arguments, tool results with is_error",
        {
            "model": "m",
            "max_tokens": 50,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {"role": "user", "content": "weather in Paris and Oslo?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                        {"type": "text", "text": "Checking."},
                        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Oslo"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "station down"}],
                            "is_error": True,
                        },
                        {"type": "text", "text": "and in short?"},
                    ],
                },
            ],
        },
        {
            "model": "m",
            "max_tokens": 50,
            "tools": [CHAT_WEATHER_TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "messages": [
                {"role": "user", "content": "weather in Paris and Oslo?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "toolu_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18 °C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: station down"},
                {"role": "user", "content": "and in short?"},
            ],
        },
    ),
    (
        "an assistant turn of tool calls only has null content; an image in a tool result follows",
        {
            "model": "m",
            "max_tokens": 50,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "tool", "name": "weather"},
            "messages": [
                {"role": "user", "content": "map?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "weather", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [
                                {"type": "text", "text": "here"},
                                {"type": "image", "source": {"type": "url", "url": "https://x.test/m.png"}},
                            ],
                        }
                    ],
                },
            ],
        },
        {
            "model": "m",
            "max_tokens": 50,
            "tools": [CHAT_WEATHER_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "messages": [
                {"role": "user", "content": "map?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "t", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "t", "content": "here"},
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/m.png"}}],
                },
            ],
        },
    ),
    (
        "tool_choice none and auto map by name; without tools there is no tool_choice",
        {"model": "m", "max_tokens": 1, "messages": USER_HI, "tool_choice": {"type": "auto"}},
        {"model": "m", "max_tokens": 1, "messages": USER_HI},
    ),
    (
        "a text document becomes text, a PDF a file part",
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        },
                        {
                            "type": "document",
                            "title": "a.pdf",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                        },
                    ],
                }
            ],
        },
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "notes"},
                        {
                            "type": "file",
                            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                        },
                    ],
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(
    ("body", "chat"), [case[1:] for case in REQUEST_CASES], ids=[c[0] for c in REQUEST_CASES]
)
def test_an_anthropic_request_becomes_the_chat_request_a_router_reads(body, chat):
    translated = chat_request_from_messages(body)
    assert translated == chat
    ChatCompletionRequest.model_validate(translated)  # the chat route would accept it, routing included


def test_tool_choice_none_and_auto_map_when_tools_are_given():
    for anthropic, openai in (("none", "none"), ("auto", "auto")):
        body = {"model": "m", "max_tokens": 1, "messages": USER_HI, "tools": [WEATHER_TOOL]}
        translated = chat_request_from_messages({**body, "tool_choice": {"type": anthropic}})
        assert translated["tool_choice"] == openai


INVALID_REQUESTS: list[tuple[Any, str | None]] = [
    ([], None),
    ({"max_tokens": 1, "messages": USER_HI}, "model"),
    ({"model": "m", "messages": USER_HI}, "max_tokens"),
    ({"model": "m", "max_tokens": 0, "messages": USER_HI}, "max_tokens"),
    ({"model": "m", "max_tokens": True, "messages": USER_HI}, "max_tokens"),
    ({"model": "m", "max_tokens": 1, "messages": []}, "messages"),
    ({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    (
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
        "messages[0].content[0].type",
    ),
    (
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
            ],
        },
        "messages[0].content[0].source.type",
    ),
    (
        {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
        "messages[0].content[0].tool_use_id",
    ),
    (
        {
            "model": "m",
            "max_tokens": 1,
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": []}]}
            ],
        },
        "messages[0].content[0].input",
    ),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "system": 5}, "system"),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "stop_sequences": "END"}, "stop_sequences"),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "temperature": "hot"}, "temperature"),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "stream": "yes"}, "stream"),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "metadata": {"user_id": 7}}, "metadata.user_id"),
    (
        {
            "model": "m",
            "max_tokens": 1,
            "messages": USER_HI,
            "tools": [{"type": "web_search_20250305", "name": "w"}],
        },
        "tools[0].type",
    ),
    ({"model": "m", "max_tokens": 1, "messages": USER_HI, "tools": [{"name": "w"}]}, "tools[0].input_schema"),
    (
        {
            "model": "m",
            "max_tokens": 1,
            "messages": USER_HI,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "tool"},
        },
        "tool_choice.name",
    ),
    (
        {
            "model": "m",
            "max_tokens": 1,
            "messages": USER_HI,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "x"},
        },
        "tool_choice.type",
    ),
]


@pytest.mark.parametrize(("body", "param"), INVALID_REQUESTS)
def test_a_malformed_request_is_refused_naming_the_field(body, param):
    with pytest.raises(MessagesTranslationError) as caught:
        chat_request_from_messages(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.body()["error"]["type"] == "invalid_request_error"
    if param:
        assert caught.value.message.startswith(f"{param}: ")
    anthropic = ErrorResponse.model_validate(anthropic_error_body(caught.value.status, caught.value.body()))
    assert anthropic.error.type == "invalid_request_error" and anthropic.error.message == caught.value.message


# ------------------------------------------------------------------ responses: chat → Anthropic

ROUTING = {"request_id": "req_abc", "backend": "cheap", "cost_usd": 0.0001}


def completion(message: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "cheap",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        **extra,
    }


USAGE = {
    "input_tokens": 12,
    "output_tokens": 5,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}

RESPONSE_CASES: list[tuple[str, dict[str, Any], tuple[str, ...], list[dict[str, Any]], str, str | None]] = [
    (
        "text, stop → end_turn, routing kept",
        completion({"content": "Hello!"}, "stop", routing=ROUTING),
        (),
        [{"type": "text", "text": "Hello!"}],
        "end_turn",
        None,
    ),
    (
        "length → max_tokens",
        completion({"content": "Hel"}, "length"),
        (),
        [{"type": "text", "text": "Hel"}],
        "max_tokens",
        None,
    ),
    (
        "tool calls → tool_use blocks with parsed input",
        completion({"content": "Let me look.", "tool_calls": [CALL]}, "tool_calls"),
        (),
        [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        ],
        "tool_use",
        None,
    ),
    (
        "tool calls only, finish stop (some servers) → tool_use, no empty text block",
        completion({"content": None, "tool_calls": [CALL]}, "stop"),
        (),
        [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}],
        "tool_use",
        None,
    ),
    (
        "a stop string the upstream names (vLLM's stop_reason) → stop_sequence",
        {
            **completion({"content": "one two"}, "stop"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "one two"},
                    "finish_reason": "stop",
                    "stop_reason": "END",
                }
            ],
        },
        ("END",),
        [{"type": "text", "text": "one two"}],
        "stop_sequence",
        "END",
    ),
    (
        "content_filter → refusal; the refusal text is the answer",
        completion({"content": None, "refusal": "I can't help with that."}, "content_filter"),
        (),
        [{"type": "text", "text": "I can't help with that."}],
        "refusal",
        None,
    ),
    (
        "no content at all → one empty text block",
        completion({"content": ""}, None),
        (),
        [{"type": "text", "text": ""}],
        "end_turn",
        None,
    ),
]


@pytest.mark.parametrize(
    ("chat", "stops", "content", "stop_reason", "stop_sequence"),
    [case[1:] for case in RESPONSE_CASES],
    ids=[case[0] for case in RESPONSE_CASES],
)
def test_a_chat_completion_becomes_an_anthropic_message(chat, stops, content, stop_reason, stop_sequence):
    message = message_from_completion(chat, stop_sequences=stops)
    parsed = Message.model_validate(message)
    assert parsed.id == "msg_123" and parsed.model == "cheap"
    assert message["content"] == content
    assert (parsed.stop_reason, parsed.stop_sequence) == (stop_reason, stop_sequence)
    assert message["usage"] == USAGE
    assert message.get("routing") == chat.get("routing")


def test_cached_prompt_tokens_are_cache_reads_not_input():
    chat = completion({"content": "x"}, "stop")
    chat["usage"] = {
        "prompt_tokens": 100,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 64},
    }
    usage = message_from_completion(chat, message_id="msg_given")["usage"]
    assert usage == {
        "input_tokens": 36,
        "output_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 64,
    }


@pytest.mark.parametrize(
    "chat",
    [
        {"id": "x", "model": "m", "choices": []},
        completion(
            {"content": None, "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{not json"}}]},
            "tool_calls",
        ),
        completion(
            {"content": None, "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}]},
            "tool_calls",
        ),
    ],
)
def test_an_unreadable_upstream_answer_is_an_upstream_error(chat):
    with pytest.raises(UpstreamError):
        message_from_completion(chat)


# ------------------------------------------------------------------ streams: chat chunks → Anthropic events


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "cheap",
        "choices": choices,
        **extra,
    }


LAST_USAGE = {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}
START = {
    "type": "message_start",
    "message": {
        "id": "msg_9",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "cheap",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    },
}
END_USAGE = {
    "input_tokens": 20,
    "output_tokens": 7,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def text_delta(index: int, text: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}


def json_delta(index: int, partial: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "input_json_delta", "partial_json": partial},
    }


def end(stop_reason: str, routing: dict[str, Any] | None = ROUTING) -> list[dict[str, Any]]:
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": END_USAGE,
    }
    if routing is not None:
        delta["routing"] = routing
    return [delta, {"type": "message_stop"}]


def tool_start(index: int, call_id: str, name: str) -> dict[str, Any]:
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    return {"type": "content_block_start", "index": index, "content_block": block}


TEXT_START = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

STREAM_CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    (
        "text in pieces; the last chunk (finish, usage, routing) as the gateway relays it",
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop", usage=LAST_USAGE, routing=ROUTING),
        ],
        [START, TEXT_START, text_delta(0, "Hel"), text_delta(0, "lo"), stop(0), *end("end_turn")],
    ),
    (
        "include_usage's trailing chunk without choices",
        [chunk({"content": "Hi"}), chunk({}, "length"), chunk(None, usage=LAST_USAGE, routing=ROUTING)],
        [START, TEXT_START, text_delta(0, "Hi"), stop(0), *end("max_tokens")],
    ),
    (
        "text then two tool calls, arguments in fragments",
        [
            chunk({"content": "Checking."}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls", usage=LAST_USAGE, routing=ROUTING),
        ],
        [
            START,
            TEXT_START,
            text_delta(0, "Checking."),
            stop(0),
            tool_start(1, "call_a", "weather"),
            json_delta(1, '{"city": '),
            json_delta(1, '"Paris"}'),
            stop(1),
            tool_start(2, "call_b", "weather"),
            json_delta(2, '{"city": "Oslo"}'),
            stop(2),
            *end("tool_use"),
        ],
    ),
    (
        "no usage and no routing: zero output tokens, no routing",
        [chunk({"content": "x"}, "stop")],
        [
            START,
            TEXT_START,
            text_delta(0, "x"),
            stop(0),
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 0},
            },
            {"type": "message_stop"},
        ],
    ),
    (
        "an upstream failure mid-stream ends it with an error event, nothing after",
        [
            chunk({"content": "par"}),
            {
                "error": {
                    "message": "backend cheap sent nothing for 30 s",
                    "type": "upstream_timeout",
                    "param": None,
                    "code": "upstream_timeout",
                }
            },
            chunk({"content": "ignored"}),
        ],
        [
            START,
            TEXT_START,
            text_delta(0, "par"),
            {
                "type": "error",
                "error": {"type": "timeout_error", "message": "backend cheap sent nothing for 30 s"},
            },
        ],
    ),
]


@pytest.mark.parametrize(
    ("chunks", "events"), [case[1:] for case in STREAM_CASES], ids=[case[0] for case in STREAM_CASES]
)
def test_chat_chunks_become_anthropic_stream_events_in_order(chunks, events):
    translator = MessageStreamTranslator()
    produced = [event for c in chunks for event in translator.translate(c)] + translator.finish()
    assert produced == events
    assert translator.finish() == [] and translator.translate(chunk({"content": "late"})) == []
    for event in produced:
        EVENT.validate_python(event)
    if produced[-1]["type"] == "message_stop":
        accumulated(produced)


def test_rendered_events_are_named_sse_frames():
    frame = render_event({"type": "message_stop"})
    assert frame == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


@pytest.mark.parametrize(
    "chat",
    [
        completion({"content": "Hello there"}, "stop", routing=ROUTING),
        completion({"content": "Let me look.", "tool_calls": [CALL]}, "tool_calls", routing=ROUTING),
        completion(
            {"content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]}, "tool_calls", routing=ROUTING
        ),
    ],
)
def test_a_streamed_answer_accumulates_to_the_same_message_as_the_whole_one(chat):
    """The gateway's SSE text (sse.completion_chunks, as a cascade streams a kept answer) through
    translate_sse, parsed back from the bytes, gives the message the whole-answer path gives."""
    translator = MessageStreamTranslator(message_id="msg_same", input_tokens=12)
    stream = b"".join(translator.translate_sse(event) for event in completion_chunks(chat))
    frames = [frame for frame in stream.decode().split("\n\n") if frame]
    events = []
    for frame in frames:
        name_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    assert events[0]["message"]["usage"]["input_tokens"] == 12
    assert accumulated(events) == Message.model_validate(message_from_completion(chat, message_id="msg_same"))


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (408, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_an_openai_error_becomes_anthropics_error_by_status(status, kind):
    body = {"error": {"message": "no backend fits", "type": "x", "param": None, "code": None}}
    assert anthropic_error_body(status, body) == {
        "type": "error",
        "error": {"type": kind, "message": "no backend fits"},
    }
    ErrorResponse.model_validate(anthropic_error_body(status, body))


def test_an_error_without_a_message_still_says_something():
    assert anthropic_error_body(500, b"garbage")["error"] == {
        "type": "api_error",
        "message": "request failed with status 500",
    }


@pytest.mark.parametrize(
    ("status", "anthropic_type", "openai_type"),
    [
        (429, "rate_limit_error", "rate_limit_error"),
        (529, "overloaded_error", "service_unavailable"),
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (500, "api_error", "server_error"),
    ],
)
def test_an_anthropic_upstream_error_becomes_an_openai_error(status, anthropic_type, openai_type):
    body = {"type": "error", "error": {"type": anthropic_type, "message": "m"}}
    assert openai_error_body(status, body) == {
        "error": {"message": "m", "type": openai_type, "param": None, "code": anthropic_type}
    }


# ------------------------------------------------------------------ the backend side: chat → Anthropic → chat

BACKEND_REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "system and developer join; max_tokens defaults; stop string; temperature clamped; user",
        {
            "model": "claude-x",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "use French"}]},
                {"role": "user", "content": "hi"},
            ],
            "stop": "END",
            "temperature": 1.5,
            "seed": 7,
            "user": "u-1",
            "stream": True,
        },
        {
            "model": "claude-x",
            "max_tokens": 1024,
            "system": "be brief\n\nuse French",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "metadata": {"user_id": "u-1"},
            "stream": True,
        },
    ),
    (
        "a tool loop: tool_calls → tool_use, tool messages → one user turn of tool_result blocks",
        {
            "model": "claude-x",
            "max_completion_tokens": 64,
            "tools": [CHAT_WEATHER_TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                    ],
                },
                {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "19 °C"}]},
                {"role": "user", "content": "thanks"},
            ],
        },
        {
            "model": "claude-x",
            "max_tokens": 64,
            "tools": [WEATHER_TOOL],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "weather?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Paris"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "18 °C"},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": "19 °C"},
                        {"type": "text", "text": "thanks"},
                    ],
                },
            ],
        },
    ),
]


@pytest.mark.parametrize(
    ("chat", "anthropic"),
    [case[1:] for case in BACKEND_REQUEST_CASES],
    ids=[case[0] for case in BACKEND_REQUEST_CASES],
)
def test_a_chat_request_becomes_a_native_messages_request(chat, anthropic):
    assert messages_request_from_chat(chat, default_max_tokens=1024) == anthropic


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": "hot"}, "temperature"),
        ({"tools": ["weather"]}, "tools[0]"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0]"),
        ({"tool_choice": {"type": "allowed_tools"}, "tools": [CHAT_WEATHER_TOOL]}, "tool_choice"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0]"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[]"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
    ],
)
def test_what_a_messages_api_cannot_do_is_refused_naming_the_field(extra, param):
    with pytest.raises(MessagesTranslationError) as caught:
        messages_request_from_chat({"model": "m", "messages": USER_HI, **extra}, default_max_tokens=10)
    assert caught.value.param == param


ANTHROPIC_REPLY = {
    "id": "msg_01X",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Looking it up."},
        {"type": "tool_use", "id": "toolu_7", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 4,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 20,
    },
}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_an_anthropic_reply_becomes_a_chat_completion(stop_reason, finish):
    chat = completion_from_message({**ANTHROPIC_REPLY, "stop_reason": stop_reason}, created=5)
    assert chat == {
        "id": "chatcmpl-01X",
        "object": "chat.completion",
        "created": 5,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Looking it up.",
                    "tool_calls": [
                        {
                            "id": "toolu_7",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 35,
            "completion_tokens": 4,
            "total_tokens": 39,
            "prompt_tokens_details": {"cached_tokens": 20},
        },
    }


def test_usage_survives_the_round_trip_through_both_directions():
    chat = completion_from_message(ANTHROPIC_REPLY, created=0)
    back = message_from_completion(chat)
    assert back["usage"]["input_tokens"] + back["usage"]["cache_read_input_tokens"] == 35
    assert back["usage"]["cache_read_input_tokens"] == 20 and back["usage"]["output_tokens"] == 4
    assert back["content"][1]["input"] == {"city": "Oslo"} and back["stop_reason"] == "tool_use"


def test_a_request_round_trips_through_both_directions():
    anthropic = {
        "model": "m",
        "max_tokens": 50,
        "system": "be brief",
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "tool", "name": "weather"},
        "stop_sequences": ["END"],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {"city": "Rome"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "20 °C"}]},
        ],
    }
    assert (
        messages_request_from_chat(chat_request_from_messages(anthropic), default_max_tokens=1) == anthropic
    )


def test_a_non_message_upstream_answer_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        completion_from_message({"type": "error", "error": {}})


def test_a_stream_whose_chunks_name_no_model_is_named_by_the_translator():
    translator = MessageStreamTranslator(model="router-a")
    first = translator.translate({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "x"}}]})
    assert first[0]["message"]["model"] == "router-a"
    assert accumulated(first + translator.finish()).content == [TextBlock(type="text", text="x")]


# --------------------------------------------------------- the backend side: Anthropic events → chat chunks

MESSAGE_START = {
    "type": "message_start",
    "message": {
        **ANTHROPIC_REPLY,
        "content": [],
        "stop_reason": None,
        "usage": {**cast(dict[str, int], ANTHROPIC_REPLY["usage"]), "output_tokens": 1},
    },
}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def message_delta(stop_reason: str, output_tokens: int = 4) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-01X",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "claude-x",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    **chat_chunk({}),
    "choices": [],
    "usage": {
        "prompt_tokens": 35,
        "completion_tokens": 4,
        "total_tokens": 39,
        "prompt_tokens_details": {"cached_tokens": 20},
    },
}
ROLE_CHUNK = chat_chunk({"role": "assistant", "content": ""})

EVENT_STREAM_CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
    (
        "text in two deltas; ping and block stops give nothing; usage from start and delta at the stop",
        [
            MESSAGE_START,
            {"type": "ping"},
            block_start(0, {"type": "text", "text": ""}),
            block_delta(0, {"type": "text_delta", "text": "Hel"}),
            block_delta(0, {"type": "text_delta", "text": "lo"}),
            {"type": "content_block_stop", "index": 0},
            message_delta("end_turn"),
            {"type": "message_stop"},
        ],
        [
            ROLE_CHUNK,
            chat_chunk({"content": "Hel"}),
            chat_chunk({"content": "lo"}),
            chat_chunk({}, "stop"),
            USAGE_CHUNK,
        ],
    ),
    (
        "thinking skipped; a tool_use block is one tool call: id and name, then its JSON pieces",
        [
            MESSAGE_START,
            block_start(0, {"type": "thinking", "thinking": ""}),
            block_delta(0, {"type": "thinking_delta", "thinking": "hmm"}),
            block_delta(0, {"type": "signature_delta", "signature": "s"}),
            block_start(1, {"type": "text", "text": "Looking"}),
            block_delta(1, {"type": "text_delta", "text": " it up."}),
            block_start(2, {"type": "tool_use", "id": "toolu_7", "name": "weather", "input": {}}),
            block_delta(2, {"type": "input_json_delta", "partial_json": '{"city":'}),
            block_delta(2, {"type": "input_json_delta", "partial_json": ' "Oslo"}'}),
            block_start(3, {"type": "tool_use", "id": "toolu_8", "name": "time", "input": {}}),
            block_delta(3, {"type": "input_json_delta", "partial_json": ""}),
            message_delta("tool_use"),
            {"type": "message_stop"},
            block_delta(1, {"type": "text_delta", "text": "after the end"}),
        ],
        [
            ROLE_CHUNK,
            chat_chunk({"content": "Looking"}),
            chat_chunk({"content": " it up."}),
            chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "toolu_7",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}),
            chat_chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "toolu_8",
                            "type": "function",
                            "function": {"name": "time", "arguments": ""},
                        }
                    ]
                }
            ),
            chat_chunk({}, "tool_calls"),
            USAGE_CHUNK,
        ],
    ),
    (
        "max_tokens is length; an unknown event type is ignored",
        [
            MESSAGE_START,
            block_start(0, {"type": "text", "text": ""}),
            {"type": "some_future_event", "data": 1},
            block_delta(0, {"type": "text_delta", "text": "Hi"}),
            message_delta("max_tokens"),
            {"type": "message_stop"},
        ],
        [ROLE_CHUNK, chat_chunk({"content": "Hi"}), chat_chunk({}, "length"), USAGE_CHUNK],
    ),
]


@pytest.mark.parametrize(
    ("events", "chunks"),
    [case[1:] for case in EVENT_STREAM_CASES],
    ids=[case[0] for case in EVENT_STREAM_CASES],
)
def test_anthropic_stream_events_become_chat_chunks_in_order(events, chunks):
    translator = CompletionChunkTranslator(model="unused", created=5)
    assert [chunk for event in events for chunk in translator.translate(event)] == chunks
    assert translator.ended


def test_the_translator_keeps_anthropics_own_usage_counts():
    translator = CompletionChunkTranslator(created=5)
    for event in EVENT_STREAM_CASES[0][1]:
        translator.translate(event)
    assert translator.usage == ANTHROPIC_REPLY["usage"]


def test_streamed_chunks_accumulate_to_the_whole_completion():
    translator = CompletionChunkTranslator(created=5)
    chunks = [chunk for event in EVENT_STREAM_CASES[1][1] for chunk in translator.translate(event)]
    whole = completion_from_message(ANTHROPIC_REPLY, created=5)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    arguments = "".join(
        call["function"]["arguments"]
        for c in chunks
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or []
        if call["index"] == 0
    )
    assert text == whole["choices"][0]["message"]["content"]
    assert json.loads(arguments) == json.loads(
        whole["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    )
    assert chunks[-1]["usage"] == whole["usage"]


def test_chunks_before_a_model_is_known_are_named_by_the_translator():
    translator = CompletionChunkTranslator(model="claude-configured", created=5)
    start = {"type": "message_start", "message": {"id": "msg_9", "usage": {"input_tokens": 3}}}
    assert translator.translate(start)[0]["model"] == "claude-configured"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error",
        ),
        (["not", "an", "event"], "not an Anthropic event"),
        ({"no_type": True}, "not an Anthropic event"),
    ],
)
def test_an_error_event_or_a_non_event_is_an_upstream_error(event, message):
    translator = CompletionChunkTranslator()
    translator.translate(MESSAGE_START)
    with pytest.raises(UpstreamError, match=message):
        translator.translate(event)
