"""The ``anthropic`` backend kind end to end: a gateway with an OpenAI-compatible backend and Anthropic
Messages backends (the mock Messages upstream under uvicorn on loopback), called with the official
``openai`` SDK: whole and streamed answers, usage and cost with Anthropic's cache prices, a router
mixing both kinds, client errors versus failures that fall back, and the key kept out of the logs."""

import json
import logging

import httpx
import openai
import pytest

from routeyard.gateway.backends.kinds import BACKEND_KINDS
from routeyard.gateway.backends.kinds.anthropic import AnthropicBackendConfig
from routeyard.testing.mock_anthropic import USAGE, create_anthropic_app
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, POEMS, UPSTREAM_KEY, start_gateway

PRICES = {
    "input_usd_per_million": 3.0,
    "output_usd_per_million": 15.0,
    "cache_write_usd_per_million": 3.75,
    "cache_read_usd_per_million": 0.3,
}
EXPECTED_COST = (11 * 3.0 + 7 * 15.0 + 200 * 3.75 + 3000 * 0.3) / 1e6
PROMPT_TOKENS = (
    USAGE["input_tokens"] + USAGE["cache_creation_input_tokens"] + USAGE["cache_read_input_tokens"]
)
WEATHER = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {"text": {}}}},
}


@pytest.fixture(scope="module")
def anthropic_upstream():
    with ServerThread(create_anthropic_app(api_key=UPSTREAM_KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(upstream, anthropic_upstream, artifact, tmp_path_factory):
    def claude(name, model, **extra):
        return {
            "name": name,
            "kind": "anthropic",
            "base_url": anthropic_upstream.url,
            "model": model,
            "api_key_env": "UPSTREAM_KEY",
            "max_tokens_default": 321,
            **PRICES,
            **extra,
        }

    def mixed(name, dear):
        return {"name": name, "kind": "knn", "artifact": str(artifact), "backends": {"dear": dear}}

    settings = {
        "backends": [
            {
                "name": "cheap",
                "base_url": upstream.url + "/v1",
                "model": "echo",
                "api_key_env": "UPSTREAM_KEY",
            },
            claude("claude", "echo"),
            claude("claude-tools", "tool-call"),
            claude("claude-rejects", "status-400"),
            claude("claude-overloaded", "status-529", retries=1),
            claude("claude-broken", "status-500", retries=1),
            claude("claude-error-mid", "error-mid"),
            claude("claude-cut", "cut"),
        ],
        "routers": [
            mixed("router-mixed", "claude"),
            mixed("fallback-overloaded", "claude-overloaded"),
            mixed("fallback-broken", "claude-broken"),
        ],
        "embedder": "hashing",
        "breaker_failures": 100,
    }
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(settings, tmp_path_factory.mktemp("anthropic"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="the-clients-own-key", max_retries=0)


def ask(gateway, model, text="hello there", **options):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    return client(gateway).chat.completions.create(model=model, messages=messages, **options)


def stream(gateway, model, text="hello there", **options):
    return list(ask(gateway, model, text, stream=True, **options))


def calls(server):
    return httpx.get(server.url + "/calls").json()


def test_the_kind_is_registered_with_its_config():
    assert BACKEND_KINDS.get("anthropic").config is AnthropicBackendConfig
    config = AnthropicBackendConfig(name="claude", input_usd_per_million=3.0)
    assert config.base_url == "https://api.anthropic.com" and config.upstream_model == "claude"
    assert (
        config.price.cache_write_usd_per_million,
        config.price.cache_read_usd_per_million,
    ) == pytest.approx((3.75, 0.3))
    assert AnthropicBackendConfig(name="c", base_url="ftp://x").problems() == [
        "base_url must start with http:// or https://"
    ]


def test_a_whole_answer_has_the_text_usage_and_cost_at_anthropics_four_prices(gateway, anthropic_upstream):
    reply = ask(gateway, "claude")
    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        PROMPT_TOKENS,
        USAGE["output_tokens"],
    )
    assert reply.usage.prompt_tokens_details.cached_tokens == USAGE["cache_read_input_tokens"]
    routing = reply.model_extra["routing"]
    assert routing["backend"] == "claude" and routing["cost_estimated"] is False
    assert routing["cost_usd"] == pytest.approx(EXPECTED_COST)
    sent = httpx.get(anthropic_upstream.url + "/last").json()
    assert sent["system"] == "be brief" and sent["max_tokens"] == 321  # Anthropic requires max_tokens
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]


def test_a_clients_max_tokens_wins_over_the_default(gateway, anthropic_upstream):
    ask(gateway, "claude", max_tokens=17)
    assert httpx.get(anthropic_upstream.url + "/last").json()["max_tokens"] == 17


@pytest.mark.parametrize("include_usage", [False, True])
def test_a_streamed_answer_has_the_text_and_its_last_chunk_usage_and_cost(gateway, include_usage):
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    chunks = stream(gateway, "claude", **options)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert all(c.choices for c in chunks[:-1]) and bool(chunks[-1].choices) is not include_usage
    last = chunks[-1]
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (PROMPT_TOKENS, USAGE["output_tokens"])
    routing = last.model_extra["routing"]  # the backend's routeyard_cost_usd, as the gateway shows it
    assert routing["backend"] == "claude" and routing["cost_usd"] == pytest.approx(EXPECTED_COST)
    assert routing["cost_estimated"] is False
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_tool_call_comes_back_as_an_openai_tool_call(gateway, streamed):
    if streamed:
        chunks = stream(gateway, "claude-tools", "Oslo", tools=[WEATHER])
        calls_ = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
        assert calls_[0].id == "toolu_mock" and calls_[0].function.name == "weather"
        arguments = "".join(call.function.arguments or "" for call in calls_)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        reply = ask(gateway, "claude-tools", "Oslo", tools=[WEATHER])
        call = reply.choices[0].message.tool_calls[0]
        assert call.id == "toolu_mock" and call.function.name == "weather"
        arguments, finish = call.function.arguments, [reply.choices[0].finish_reason]
    assert json.loads(arguments) == {"text": "Oslo"} and finish == ["tool_calls"]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_router_mixing_both_kinds_sends_each_prompt_to_its_backend(gateway, streamed):
    for prompt, backend, answer in ((MATH[3], "cheap", "echo: "), (POEMS[1], "claude", "echo: ")):
        if streamed:
            chunks = stream(gateway, "router-mixed", prompt)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            routing = chunks[-1].model_extra["routing"]
        else:
            reply = ask(gateway, "router-mixed", prompt)
            text, routing = reply.choices[0].message.content, reply.model_extra["routing"]
        assert text == answer + prompt and routing["backend"] == backend


@pytest.mark.parametrize("streamed", [False, True])
def test_an_upstream_400_is_the_clients_error_and_is_not_retried(gateway, anthropic_upstream, streamed):
    before = calls(anthropic_upstream).get("status-400", 0)
    with pytest.raises(openai.BadRequestError) as caught:
        stream(gateway, "claude-rejects") if streamed else ask(gateway, "claude-rejects")
    assert caught.value.status_code == 400
    assert "backend claude-rejects rejected the request with HTTP 400" in caught.value.message
    assert calls(anthropic_upstream)["status-400"] == before + 1


def test_what_a_messages_api_cannot_do_is_a_400_naming_the_field_before_any_call(gateway, anthropic_upstream):
    before = calls(anthropic_upstream).get("echo", 0)
    with pytest.raises(openai.BadRequestError, match="n: is not supported by an Anthropic backend"):
        ask(gateway, "claude", n=2)
    assert calls(anthropic_upstream).get("echo", 0) == before


@pytest.mark.parametrize(
    ("router", "backend", "model"),
    [
        ("fallback-overloaded", "claude-overloaded", "status-529"),
        ("fallback-broken", "claude-broken", "status-500"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_an_overloaded_or_failing_upstream_is_retried_then_falls_back(
    gateway, anthropic_upstream, router, backend, model, streamed
):
    before = calls(anthropic_upstream).get(model, 0)
    with pytest.raises(openai.InternalServerError) as caught:
        ask(gateway, backend)
    assert caught.value.status_code == 502 and f"backend {backend} answered HTTP" in caught.value.message
    assert calls(anthropic_upstream)[model] == before + 2  # one retry
    if streamed:
        chunks = stream(gateway, router, POEMS[0])
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        routing = chunks[-1].model_extra["routing"]
    else:
        reply = ask(gateway, router, POEMS[0])
        text, routing = reply.choices[0].message.content, reply.model_extra["routing"]
    assert text == "echo: " + POEMS[0]
    assert [(a["backend"], a["status"]) for a in routing["attempts"]] == [
        (backend, "upstream_error"),
        ("cheap", "ok"),
    ]


@pytest.mark.parametrize(
    ("backend", "message"),
    [("claude-error-mid", "sent an error mid-stream"), ("claude-cut", "no message_stop before its end")],
)
def test_an_error_event_or_a_cut_mid_stream_ends_it_with_an_error(gateway, backend, message):
    received = []
    with pytest.raises(openai.APIError, match=message):
        for chunk in ask(gateway, backend, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).startswith("echo")


def test_the_key_travels_as_x_api_key_and_never_reaches_a_log_or_a_reply(gateway, anthropic_upstream, caplog):
    body = {"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    url = anthropic_upstream.url + "/v1/messages"
    version = {"anthropic-version": "2023-06-01"}
    assert httpx.post(url, json=body, headers=version).status_code == 401  # the mock checks the key
    assert httpx.post(url, json=body, headers={**version, "x-api-key": UPSTREAM_KEY}).status_code == 200
    with caplog.at_level(logging.DEBUG):
        texts = [
            ask(gateway, "claude").model_dump_json(),
            *(c.model_dump_json() for c in stream(gateway, "claude")),
        ]
        for backend in ("claude-rejects", "claude-broken", "claude-error-mid"):
            with pytest.raises(openai.APIError) as caught:
                stream(gateway, backend)
            texts.append(str(caught.value.body))
    assert caplog.records  # the gateway did log
    assert all(UPSTREAM_KEY not in text for text in [*texts, caplog.text])
