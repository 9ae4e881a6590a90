"""The Responses API, stateless subset ⇄ chat completions (routeyard.gateway.responses_api), table-driven.

What the package produces is parsed with the official ``openai`` SDK's own types
(``openai.types.responses``), and a translated stream is run through the SDK's own stream state
(``ResponseStreamState``, what ``client.responses.stream`` uses), which asserts the events' order.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import FunctionToolParam, Response, ResponseStreamEvent
from pydantic import TypeAdapter

from routeyard.gateway.errors import UpstreamError
from routeyard.gateway.responses_api.reply import response_from_completion
from routeyard.gateway.responses_api.request import (
    ResponsesTranslationError,
    UnsupportedFeatureError,
    chat_request_from_responses,
)
from routeyard.gateway.responses_api.stream import ResponseStreamTranslator, render_event
from routeyard.gateway.sse import completion_chunks
from routeyard.gateway.wire import ChatCompletionRequest

EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
WEATHER: dict[str, object] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOL: FunctionToolParam = {
    "type": "function",
    "name": "weather",
    "description": "the weather",
    "parameters": WEATHER,
    "strict": True,
}
CHAT_TOOL = {
    "type": "function",
    "function": {"name": "weather", "description": "the weather", "parameters": WEATHER, "strict": True},
}

# ------------------------------------------------------------------ requests

REQUEST_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "a string input; instructions first; max_output_tokens; sampling; stream; user; routing passes",
        {
            "model": "auto",
            "input": "hi",
            "instructions": "be brief",
            "max_output_tokens": 64,
            "temperature": 0.3,
            "top_p": 0.9,
            "stream": True,
            "user": "u-1",
            "metadata": {"team": "a"},
            "store": False,
            "truncation": "disabled",
            "include": ["message.output_text.logprobs"],
            "routing": {"max_cost_usd": 0.01},
        },
        {
            "model": "auto",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "max_tokens": 64,
            "temperature": 0.3,
            "top_p": 0.9,
            "stream": True,
            "user": "u-1",
            "routing": {"max_cost_usd": 0.01},
        },
    ),
    (
        "message items with input_text and input_image; developer and assistant turns",
        {
            "model": "m",
            "input": [
                {"role": "developer", "content": "use French"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is this?"},
                        {"type": "input_image", "image_url": "https://x.test/cat.png", "detail": "low"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
                },
                {"role": "user", "content": [{"type": "input_text", "text": "sure?"}]},
            ],
        },
        {
            "model": "m",
            "messages": [
                {"role": "developer", "content": "use French"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/cat.png", "detail": "low"},
                        },
                    ],
                },
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "sure?"},
            ],
        },
    ),
    (
        "a tool loop: function tools, tool_choice, function_call and function_call_output items",
        {
            "model": "m",
            "tools": [TOOL],
            "tool_choice": {"type": "function", "name": "weather"},
            "parallel_tool_calls": False,
            "input": [
                {"role": "user", "content": "weather in Paris and Oslo?"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "weather",
                    "arguments": '{"city":"Oslo"}',
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "18 °C"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "19 °C"}],
                },
            ],
        },
        {
            "model": "m",
            "tools": [CHAT_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "parallel_tool_calls": False,
            "messages": [
                {"role": "user", "content": "weather in Paris and Oslo?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
                {"role": "tool", "tool_call_id": "call_2", "content": "19 °C"},
            ],
        },
    ),
    (
        "a function_call after an assistant message joins it; tool_choice required",
        {
            "model": "m",
            "tools": [TOOL],
            "tool_choice": "required",
            "input": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "Checking."},
                {"type": "function_call", "call_id": "c", "name": "weather", "arguments": "{}"},
            ],
        },
        {
            "model": "m",
            "tools": [CHAT_TOOL],
            "tool_choice": "required",
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                    ],
                },
            ],
        },
    ),
    (
        "text.format json_schema → response_format; verbosity; reasoning effort; "
        "no parallel_tool_calls without tools",
        {
            "model": "m",
            "input": "list two colours",
            "parallel_tool_calls": True,
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "colours",
                    "schema": {"type": "object"},
                    "strict": True,
                },
                "verbosity": "low",
            },
            "reasoning": {"effort": "minimal", "summary": "auto"},
        },
        {
            "model": "m",
            "messages": [{"role": "user", "content": "list two colours"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "colours", "schema": {"type": "object"}, "strict": True},
            },
            "verbosity": "low",
            "reasoning_effort": "minimal",
        },
    ),
    (
        "an input_file with file_data becomes a file part; json_object format",
        {
            "model": "m",
            "text": {"format": {"type": "json_object"}},
            "input": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_file",
                            "filename": "a.pdf",
                            "file_data": "data:application/pdf;base64,JVBE",
                        },
                        {"type": "input_text", "text": "summarise"},
                    ],
                }
            ],
        },
        {
            "model": "m",
            "response_format": {"type": "json_object"},
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "file",
                            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
                        },
                        {"type": "text", "text": "summarise"},
                    ],
                }
            ],
        },
    ),
]


@pytest.mark.parametrize(
    ("body", "chat"), [case[1:] for case in REQUEST_CASES], ids=[case[0] for case in REQUEST_CASES]
)
def test_a_responses_request_becomes_the_chat_request_a_router_reads(body, chat):
    translated = chat_request_from_responses(body)
    assert translated == chat
    ChatCompletionRequest.model_validate(translated)  # the chat route would accept it, routing included


UNSUPPORTED: list[tuple[dict[str, Any], str]] = [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"background": True}, "background"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [TOOL, {"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[1].type"),
    ({"tools": [TOOL], "tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
        "input[0].content[0]",
    ),
    (
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
        "input[0].content[0]",
    ),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
    (
        {"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image"}]}]},
        "input[0].output[0]",
    ),
    ({"text": {"format": {"type": "grammar"}}}, "text.format.type"),
]


@pytest.mark.parametrize(("extra", "param"), UNSUPPORTED)
def test_what_needs_state_or_a_built_in_tool_is_refused_naming_the_field(extra, param):
    with pytest.raises(UnsupportedFeatureError) as caught:
        chat_request_from_responses({"model": "m", "input": "hi", **extra})
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.body()["error"] == {
        "message": caught.value.message,
        "type": "invalid_request_error",
        "param": param,
        "code": "unsupported_parameter",
    }
    assert caught.value.message.startswith(f"{param}: ") and "not supported" in caught.value.message


INVALID: list[tuple[Any, str | None]] = [
    ("hi", None),
    ({"input": "hi"}, "model"),
    ({"model": "m"}, "input"),
    ({"model": "m", "input": []}, "input"),
    ({"model": "m", "input": [{"type": "reasoning", "id": "rs"}]}, "input"),
    ({"model": "m", "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": "m", "input": "hi", "temperature": "warm"}, "temperature"),
    ({"model": "m", "input": "hi", "instructions": ["a"]}, "instructions"),
    ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"model": "m", "input": [{"role": "user", "content": 5}]}, "input[0].content"),
    (
        {
            "model": "m",
            "input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}],
        },
        "input[0].content",
    ),
    (
        {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        "input[0].call_id",
    ),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
    ({"model": "m", "input": "hi", "text": "json"}, "text"),
]


@pytest.mark.parametrize(("body", "param"), INVALID)
def test_a_malformed_request_is_refused_naming_the_field(body, param):
    with pytest.raises(ResponsesTranslationError) as caught:
        chat_request_from_responses(body)
    assert caught.value.status == 400 and caught.value.param == param
    assert not isinstance(caught.value, UnsupportedFeatureError)


# ------------------------------------------------------------------ responses

ROUTING = {"request_id": "req_abc", "backend": "cheap", "cost_usd": 0.0001}
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
USAGE = {
    "prompt_tokens": 30,
    "completion_tokens": 9,
    "total_tokens": 39,
    "prompt_tokens_details": {"cached_tokens": 16},
    "completion_tokens_details": {"reasoning_tokens": 4},
}


def completion(message: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-77",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "cheap",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": USAGE,
        **extra,
    }


def text_item(text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": "msg_77", "type": "message", "status": status, "role": "assistant", "content": [part]}


def call_item(n: int, call_id: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"fc_77_{n}",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": "weather",
        "arguments": arguments,
    }


RESPONSE_CASES: list[tuple[str, dict[str, Any], str, dict[str, Any] | None, list[dict[str, Any]]]] = [
    (
        "text, stop → completed",
        completion({"content": "Hello!"}, "stop", routing=ROUTING),
        "completed",
        None,
        [text_item("Hello!")],
    ),
    (
        "length → incomplete, max_output_tokens",
        completion({"content": "Hel"}, "length"),
        "incomplete",
        {"reason": "max_output_tokens"},
        [text_item("Hel", "incomplete")],
    ),
    (
        "content_filter → incomplete, content_filter",
        completion({"content": None, "refusal": "I can't."}, "content_filter"),
        "incomplete",
        {"reason": "content_filter"},
        [text_item("I can't.", "incomplete")],
    ),
    (
        "text and two tool calls → a message and two function_call items",
        completion({"content": "Checking.", "tool_calls": [CALL, {**CALL, "id": "call_2"}]}, "tool_calls"),
        "completed",
        None,
        [
            text_item("Checking."),
            call_item(0, "call_1", '{"city":"Paris"}'),
            call_item(1, "call_2", '{"city":"Paris"}'),
        ],
    ),
    (
        "tool calls only → no empty message item",
        completion({"content": None, "tool_calls": [CALL]}, "tool_calls"),
        "completed",
        None,
        [call_item(0, "call_1", '{"city":"Paris"}')],
    ),
]
REQUEST = {
    "model": "auto",
    "input": "hi",
    "instructions": "be brief",
    "max_output_tokens": 50,
    "tools": [TOOL],
}


@pytest.mark.parametrize(
    ("chat", "status", "details", "output"),
    [case[1:] for case in RESPONSE_CASES],
    ids=[case[0] for case in RESPONSE_CASES],
)
def test_a_chat_completion_becomes_a_response_the_sdk_reads(chat, status, details, output):
    response = response_from_completion(chat, REQUEST)
    parsed = Response.model_validate(response)
    assert (response["id"], response["object"], response["created_at"]) == ("resp_77", "response", 1700000000)
    assert (response["status"], response["incomplete_details"], response["output"]) == (
        status,
        details,
        output,
    )
    assert response["usage"] == {
        "input_tokens": 30,
        "input_tokens_details": {"cached_tokens": 16, "cache_write_tokens": 0},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 39,
    }
    assert parsed.model == "cheap" and parsed.instructions == "be brief" and parsed.max_output_tokens == 50
    assert parsed.tools[0].type == "function" and parsed.tool_choice == "auto"
    assert parsed.output_text == "".join(
        c["text"] for item in output if item["type"] == "message" for c in item["content"]
    )
    assert response.get("routing") == chat.get("routing")


def test_a_given_response_id_names_the_items_too():
    response = response_from_completion(
        completion({"content": "x"}, "stop"), REQUEST, response_id="resp_req9"
    )
    assert response["id"] == "resp_req9" and response["output"][0]["id"] == "msg_req9"


def test_a_completion_without_a_choice_is_an_upstream_error():
    with pytest.raises(UpstreamError):
        response_from_completion({"id": "x", "choices": []}, REQUEST)


# ------------------------------------------------------------------ streams


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-77",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "cheap",
        "choices": choices,
        **extra,
    }


STREAM_CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = [
    (
        "text in pieces, then the gateway's last chunk",
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop", usage=USAGE, routing=ROUTING),
        ],
        [
            ("response.created", {}),
            ("response.in_progress", {}),
            ("response.output_item.added", {"output_index": 0}),
            ("response.content_part.added", {"item_id": "msg_77", "content_index": 0}),
            ("response.output_text.delta", {"delta": "Hel"}),
            ("response.output_text.delta", {"delta": "lo"}),
            ("response.output_text.done", {"text": "Hello"}),
            ("response.content_part.done", {"output_index": 0}),
            ("response.output_item.done", {"output_index": 0}),
            ("response.completed", {}),
        ],
    ),
    (
        "text then two tool calls with fragmented arguments",
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
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "weather", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk({}, "tool_calls"),
            chunk(None, usage=USAGE, routing=ROUTING),
        ],
        [
            ("response.created", {}),
            ("response.in_progress", {}),
            ("response.output_item.added", {"output_index": 0}),
            ("response.content_part.added", {}),
            ("response.output_text.delta", {"delta": "Checking."}),
            ("response.output_text.done", {"text": "Checking."}),
            ("response.content_part.done", {}),
            ("response.output_item.done", {"output_index": 0}),
            ("response.output_item.added", {"output_index": 1}),
            ("response.function_call_arguments.delta", {"item_id": "fc_77_0", "delta": '{"city":'}),
            ("response.function_call_arguments.delta", {"item_id": "fc_77_0", "delta": '"Paris"}'}),
            (
                "response.function_call_arguments.done",
                {"item_id": "fc_77_0", "arguments": '{"city":"Paris"}'},
            ),
            ("response.output_item.done", {"output_index": 1}),
            ("response.output_item.added", {"output_index": 2}),
            ("response.function_call_arguments.delta", {"item_id": "fc_77_1", "delta": "{}"}),
            ("response.function_call_arguments.done", {"item_id": "fc_77_1", "arguments": "{}"}),
            ("response.output_item.done", {"output_index": 2}),
            ("response.completed", {}),
        ],
    ),
    (
        "cut by max_output_tokens → response.incomplete",
        [chunk({"content": "Hel"}), chunk({}, "length", usage=USAGE)],
        [
            ("response.created", {}),
            ("response.in_progress", {}),
            ("response.output_item.added", {}),
            ("response.content_part.added", {}),
            ("response.output_text.delta", {}),
            ("response.output_text.done", {}),
            ("response.content_part.done", {}),
            ("response.output_item.done", {}),
            ("response.incomplete", {}),
        ],
    ),
    (
        "an upstream failure mid-stream → error, then response.failed, nothing after",
        [
            chunk({"content": "par"}),
            {
                "error": {
                    "message": "backend cheap failed",
                    "type": "upstream_error",
                    "param": None,
                    "code": "upstream_error",
                }
            },
            chunk({"content": "late"}),
        ],
        [
            ("response.created", {}),
            ("response.in_progress", {}),
            ("response.output_item.added", {}),
            ("response.content_part.added", {}),
            ("response.output_text.delta", {"delta": "par"}),
            ("error", {"message": "backend cheap failed", "code": "upstream_error"}),
            ("response.failed", {}),
        ],
    ),
]


@pytest.mark.parametrize(
    ("chunks", "expected"), [case[1:] for case in STREAM_CASES], ids=[case[0] for case in STREAM_CASES]
)
def test_chat_chunks_become_responses_events_the_sdk_reads(chunks, expected):
    translator = ResponseStreamTranslator(REQUEST)
    events = [event for c in chunks for event in translator.translate(c)] + translator.finish()
    assert [
        (event["type"], {k: event.get(k) for k in fields})
        for event, (_, fields) in zip(events, expected, strict=True)
    ] == expected
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert translator.finish() == [] and translator.translate(chunk({"content": "x"})) == []
    state = ResponseStreamState(input_tools=[TOOL], text_format=omit)  # the SDK's own accumulator
    for event in events:
        state.handle_event(EVENT.validate_python(event))
    final = events[-1]
    if final["type"] == "response.completed":
        assert final["response"]["usage"]["total_tokens"] == 39 and final["response"]["routing"] == ROUTING
    if final["type"] == "response.failed":
        assert final["response"]["error"] == {"code": "server_error", "message": "backend cheap failed"}


@pytest.mark.parametrize(
    "chat",
    [
        completion({"content": "Hello there"}, "stop", routing=ROUTING),
        completion({"content": "Checking.", "tool_calls": [CALL]}, "tool_calls", routing=ROUTING),
        completion(
            {"content": None, "tool_calls": [CALL, {**CALL, "id": "call_2"}]}, "tool_calls", routing=ROUTING
        ),
        completion({"content": "Hel"}, "length", routing=ROUTING),
    ],
)
def test_a_streamed_answer_ends_with_the_same_response_as_the_whole_one(chat):
    """The gateway's SSE text (sse.completion_chunks) through translate_sse, parsed back from the bytes:
    the last event carries the Response the whole-answer path gives, and the SDK's stream state
    accumulates the same output."""
    translator = ResponseStreamTranslator(REQUEST, response_id="resp_same")
    stream = b"".join(translator.translate_sse(event) for event in completion_chunks(chat))
    events = []
    for frame in [frame for frame in stream.decode().split("\n\n") if frame]:
        name_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    whole = response_from_completion(chat, REQUEST, response_id="resp_same")
    assert events[-1]["response"] == whole
    state = ResponseStreamState(input_tools=[TOOL], text_format=omit)
    for event in events:
        state.handle_event(EVENT.validate_python(event))
    assert (
        Response.model_validate(events[-1]["response"]).output_text
        == Response.model_validate(whole).output_text
    )


def test_text_after_a_tool_call_opens_a_second_message_with_its_own_id():
    translator = ResponseStreamTranslator(REQUEST, response_id="resp_r")
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    deltas: list[dict[str, Any]] = [{"content": "a"}, {"tool_calls": [call]}, {"content": "b"}]
    events = [e for delta in deltas for e in translator.translate(chunk(delta))] + translator.finish()
    output = events[-1]["response"]["output"]
    assert [(item["type"], item["id"]) for item in output] == [
        ("message", "msg_r"),
        ("function_call", "fc_r_0"),
        ("message", "msg_r_1"),
    ]
    state = ResponseStreamState(input_tools=[TOOL], text_format=omit)
    for event in events:
        state.handle_event(EVENT.validate_python(event))
    assert Response.model_validate(events[-1]["response"]).output_text == "ab"


def test_rendered_events_are_named_sse_frames():
    frame = render_event({"type": "response.output_text.delta", "sequence_number": 4, "delta": "hi"})
    data = b'{"type":"response.output_text.delta","sequence_number":4,"delta":"hi"}'
    assert frame == b"event: response.output_text.delta\ndata: " + data + b"\n\n"
