"""The Anthropic Messages and Responses API front doors, through the official ``anthropic`` and ``openai``
SDKs over real HTTP, against a gateway under uvicorn and the mock upstream (which records what it got)."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types import MessageParam, TextBlock, ToolParam, ToolUseBlock

from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.stream_relay import CLIENT_CLOSED
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, POEMS, gateway_settings, memory_log, start_gateway

LOOKUP: ToolParam = {
    "name": "lookup",
    "description": "looks a word up",
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


class RecordingUpstream:
    """The mock upstream, keeping every chat-completion body it received (``bodies``, in order)."""

    def __init__(self) -> None:
        self.app = create_upstream_app()
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            return await self.app(scope, receive, send)
        parts: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(json.loads(b"".join(parts)))
            return message

        return await self.app(scope, recording_receive, send)


@pytest.fixture(scope="module")
def recording():
    upstream = RecordingUpstream()
    with ServerThread(upstream) as server:
        yield upstream, server


@pytest.fixture(scope="module")
def doors(recording, artifact, tmp_path_factory):
    upstream, upstream_server = recording
    settings = gateway_settings(upstream_server.url, artifact)
    v1 = upstream_server.url + "/v1"
    for name, model in (("tooler", "tool-call"), ("trickler", "trickle:0.05")):
        settings["backends"].append(
            {"name": name, "base_url": v1, "model": model, "api_key_env": "UPSTREAM_KEY"}
        )
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(settings, tmp_path_factory.mktemp("doors"), monkeypatch)
    yield app, server, upstream
    server.__exit__(None, None, None)
    monkeypatch.undo()


def claude(server: ServerThread, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.url, api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs
    )


def gpt(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


CONVERSATION: list[MessageParam] = [
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": [{"type": "text", "text": "second question"}]},
]

# ------------------------------------------------------------------ Anthropic Messages


def test_a_message_with_system_turns_max_tokens_and_stop_sequences(doors):
    _, server, upstream = doors
    raw = claude(server).messages.with_raw_response.create(
        model="cheap",
        system="be brief",
        messages=CONVERSATION,
        max_tokens=64,
        stop_sequences=["END"],
    )
    message = raw.parse()
    assert isinstance(message.content[0], TextBlock) and message.content[0].text == "echo: second question"
    assert (message.role, message.model, message.stop_reason) == ("assistant", "cheap", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)
    assert message.id.startswith("msg_")
    assert raw.headers["x-routeyard-backend"] == "cheap" and raw.headers["x-routeyard-request-id"]
    assert (message.model_extra or {})["routing"]["backend"] == "cheap"
    sent = upstream.bodies[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "be brief"
    assert (sent["max_tokens"], sent["stop"], sent["model"]) == (64, ["END"], "echo")


def test_a_streamed_message_gives_its_text_and_final_usage(doors):
    app, server, _ = doors
    with claude(server).messages.stream(
        model="cheap", system="be brief", messages=CONVERSATION, max_tokens=64
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "echo: second question"
    assert isinstance(final.content[0], TextBlock) and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.model == "cheap"
    assert final.usage.input_tokens == 10 and final.usage.output_tokens == 3  # the mock counts words
    logged = memory_log(app).records[-1]  # logged once the stream ended, like a chat stream
    assert (logged.status, logged.backend, logged.completion_tokens) == (200, "cheap", 3)


def test_a_raw_message_stream_has_anthropics_events_the_routing_and_the_headers(doors):
    _, server, _ = doors
    raw = claude(server).messages.with_raw_response.create(
        model="router-knn", messages=[{"role": "user", "content": MATH[0]}], max_tokens=64, stream=True
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-routeyard-backend"] == "cheap" and raw.headers["x-routeyard-router"] == "router-knn"
    events = list(raw.parse())
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    delta = events[-2]
    routing = (delta.model_extra or {})["routing"]
    assert routing["router"] == "router-knn" and routing["backend"] == "cheap"
    assert len(routing["candidates"]) == 2


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/responses"])
def test_a_stream_the_client_abandons_is_logged_as_on_the_chat_route(doors, path):
    app, server, _ = doors
    body = {"model": "trickler", "max_tokens": 64, "stream": True}
    body |= {"messages": [{"role": "user", "content": "hi"}]} if path == "/v1/messages" else {"input": "hi"}
    with (
        httpx.Client(base_url=server.url, timeout=10.0) as http,
        http.stream("POST", path, json=body) as reply,
    ):
        assert reply.status_code == 200
        first = next(reply.iter_lines())
        assert first.startswith("event: ")
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and memory_log(app).records[-1].backend != "trickler":
        time.sleep(0.02)
    logged = memory_log(app).records[-1]
    assert (logged.backend, logged.status) == ("trickler", CLIENT_CLOSED)


def test_a_tool_use_round_trip_whole(doors):
    _, server, upstream = doors
    client = claude(server)
    question: list[MessageParam] = [{"role": "user", "content": "weather in Oslo"}]
    first = client.messages.create(model="tooler", messages=question, tools=[LOOKUP], max_tokens=64)
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert isinstance(call, ToolUseBlock)
    assert (call.name, call.input, call.id) == ("lookup", {"text": "weather in Oslo"}, "call_mock")
    sent_tools = upstream.bodies[-1]["tools"]
    assert sent_tools[0]["function"]["name"] == "lookup"
    assert sent_tools[0]["function"]["parameters"] == LOOKUP["input_schema"]
    second = client.messages.create(
        model="tooler",
        tools=[LOOKUP],
        max_tokens=64,
        messages=[
            *question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "rain"}]},
        ],
    )
    assert isinstance(second.content[0], TextBlock) and second.content[0].text == "echo: rain"
    assert second.stop_reason == "end_turn"
    sent = upstream.bodies[-1]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_mock"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_mock", "content": "rain"}


def test_a_streamed_tool_use_arrives_as_a_tool_use_block(doors):
    _, server, _ = doors
    with claude(server).messages.stream(
        model="tooler", messages=[{"role": "user", "content": "look up owls"}], tools=[LOOKUP], max_tokens=64
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    call = final.content[-1]
    assert isinstance(call, ToolUseBlock) and call.input == {"text": "look up owls"}


def test_messages_errors_are_anthropic_shaped_with_the_same_status(doors):
    app, server, _ = doors
    client = claude(server)
    with pytest.raises(anthropic.NotFoundError) as not_found:
        client.messages.create(model="no-such-model", messages=CONVERSATION, max_tokens=8)
    assert not_found.value.status_code == 404
    body: Any = not_found.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "no-such-model" in body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="cheap", messages=[], max_tokens=8)
    bad_body: Any = bad.value.body
    assert bad_body["error"]["type"] == "invalid_request_error" and "messages" in bad_body["error"]["message"]
    refused = [record.status for record in runtime_of(app).recent.records][-2:]
    assert refused == [404, 400]  # refusals are counted as on the chat route


def test_the_client_key_may_come_as_x_api_key_or_bearer(upstream, artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("DOOR_KEYS", "key-one,key-two")
    _, server = start_gateway(
        gateway_settings(upstream.url, artifact, client_keys_env="DOOR_KEYS"), tmp_path, monkeypatch
    )
    try:
        question: list[MessageParam] = [{"role": "user", "content": "hi"}]
        reply = claude(server, api_key="key-two").messages.create(
            model="cheap", messages=question, max_tokens=8
        )
        assert isinstance(reply.content[0], TextBlock) and reply.content[0].text == "echo: hi"
        bearer = anthropic.Anthropic(base_url=server.url, auth_token="key-one", max_retries=0)
        assert bearer.messages.create(model="cheap", messages=question, max_tokens=8).content
        with pytest.raises(anthropic.AuthenticationError) as refused:
            claude(server, api_key="wrong").messages.create(model="cheap", messages=question, max_tokens=8)
        refused_body: Any = refused.value.body
        assert refused_body["error"]["type"] == "authentication_error"
        # x-api-key opens the Anthropic door only; the OpenAI routes still want Bearer
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url=server.url + "/v1",
                api_key="not-a-key",
                default_headers={"x-api-key": "key-two"},
                max_retries=0,
            ).responses.create(model="cheap", input="hi")
    finally:
        server.__exit__(None, None, None)


# ------------------------------------------------------------------ OpenAI Responses


def test_a_response_with_instructions_input_items_and_max_output_tokens(doors):
    _, server, upstream = doors
    raw = gpt(server).responses.with_raw_response.create(
        model="cheap",
        instructions="be brief",
        input=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "input_text", "text": "second question"}]},
        ],
        max_output_tokens=32,
    )
    response = raw.parse()
    assert response.output_text == "echo: second question"
    assert response.status == "completed" and response.model == "cheap" and response.id.startswith("resp_")
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (
        10,
        5,
    )
    assert response.instructions == "be brief" and response.max_output_tokens == 32
    assert (response.model_extra or {})["routing"]["backend"] == "cheap"
    assert raw.headers["x-routeyard-backend"] == "cheap"
    sent = upstream.bodies[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == "be brief" and sent["max_tokens"] == 32


def test_a_streamed_response_gives_deltas_and_a_completed_response(doors):
    _, server, _ = doors
    stream = gpt(server).responses.create(
        model="router-knn", instructions="be brief", input=POEMS[0], max_output_tokens=64, stream=True
    )
    events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert text == "echo: " + POEMS[0]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == text and completed.response.usage is not None
    assert completed.response.usage.input_tokens == 10
    routing = (completed.response.model_extra or {})["routing"]
    assert routing["router"] == "router-knn" and routing["backend"] == "dear"  # poems go to the dear model


def test_a_routed_response_explains_its_choice(doors):
    _, server, _ = doors
    response = gpt(server).responses.create(model="router-knn", input=MATH[1])
    routing = (response.model_extra or {})["routing"]
    assert routing["router"] == "router-knn" and routing["backend"] == "cheap" == response.model
    assert {c["backend"] for c in routing["candidates"]} == {"cheap", "dear"}


def test_a_routed_message_explains_its_choice(doors):
    _, server, _ = doors
    message = claude(server).messages.create(
        model="router-knn", messages=[{"role": "user", "content": POEMS[1]}], max_tokens=64
    )
    routing = (message.model_extra or {})["routing"]
    assert routing["router"] == "router-knn" and routing["backend"] == "dear" == message.model


def test_stateful_responses_features_are_a_400_naming_the_field(doors):
    _, server, upstream = doors
    calls_before = len(upstream.bodies)
    with pytest.raises(openai.BadRequestError) as refused:
        gpt(server).responses.create(model="cheap", input="again", previous_response_id="resp_123")
    assert refused.value.status_code == 400
    error: Any = refused.value.body
    assert error["param"] == "previous_response_id" and "stateless" in error["message"]
    with pytest.raises(openai.BadRequestError) as stored:
        gpt(server).responses.create(model="cheap", input="again", store=True)
    stored_error: Any = stored.value.body
    assert stored_error["param"] == "store"
    assert len(upstream.bodies) == calls_before  # nothing reached an upstream
