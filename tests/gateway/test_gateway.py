"""The gateway through the official openai SDK, over real HTTP, against a real mock upstream."""

import asyncio
import logging

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from routeyard.gateway.runtime import runtime_of
from tests.gateway.conftest import MATH, POEMS, UPSTREAM_KEY, gateway_settings, start_gateway


def client(gateway, **kwargs):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, **kwargs)


def ask(gateway, model, text, **kwargs):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )
    return raw.parse(), raw.headers


def test_a_named_backend_is_called_directly_and_the_reply_explains_itself(gateway):
    reply, headers = ask(gateway, "cheap", "hello there")
    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.model == "cheap"
    routing = reply.model_extra["routing"]
    assert routing["backend"] == "cheap" and routing["router"] is None
    assert routing["cost_usd"] == pytest.approx((10 * 0.5 + 5 * 1.0) / 1e6)  # upstream usage × prices
    assert routing["cost_estimated"] is False
    assert headers["x-routeyard-backend"] == "cheap"
    assert headers["x-routeyard-request-id"] == routing["request_id"]
    assert "x-routeyard-router" not in headers


def test_the_router_sends_sums_to_the_cheap_model_and_poems_to_the_dear_one(gateway):
    _, math_headers = ask(gateway, "router-knn", MATH[5])
    poem_reply, poem_headers = ask(gateway, "router-knn", POEMS[0])
    assert math_headers["x-routeyard-backend"] == "cheap"
    assert poem_headers["x-routeyard-backend"] == "dear"
    assert math_headers["x-routeyard-router"] == "router-knn"
    assert float(poem_headers["x-routeyard-predicted-quality"]) > 0.9
    candidates = {c["backend"]: c for c in poem_reply.model_extra["routing"]["candidates"]}
    assert set(candidates) == {"cheap", "dear"}
    assert candidates["cheap"]["predicted_quality"] < 0.1 and candidates["dear"]["predicted_cost_usd"] > 0.005


def test_the_mlp_router_routes_through_the_gateway_too(gateway):
    math_reply, math_headers = ask(gateway, "router-mlp", MATH[7])
    _, poem_headers = ask(gateway, "router-mlp", POEMS[3])
    assert math_headers["x-routeyard-router"] == "router-mlp"
    assert math_headers["x-routeyard-backend"] == "cheap"
    assert poem_headers["x-routeyard-backend"] == "dear"
    assert len(math_reply.model_extra["routing"]["candidates"]) == 2


def test_willingness_to_pay_comes_from_the_model_suffix_or_the_routing_body(gateway):
    _, stingy = ask(gateway, "router-knn-0", POEMS[1])
    assert stingy["x-routeyard-backend"] == "cheap"
    _, body = ask(gateway, "router-knn", POEMS[1], extra_body={"routing": {"willingness_to_pay": 0.0001}})
    assert body["x-routeyard-backend"] == "cheap"
    _, auto = ask(gateway, "auto", POEMS[1])
    assert auto["x-routeyard-backend"] == "dear"


def test_max_cost_min_quality_and_exclude_constrain_the_choice(gateway):
    _, capped = ask(gateway, "router-knn", POEMS[2], extra_body={"routing": {"max_cost_usd": 0.001}})
    assert capped["x-routeyard-backend"] == "cheap"
    _, excluded = ask(gateway, "router-knn", POEMS[2], extra_body={"routing": {"exclude": ["dear"]}})
    assert excluded["x-routeyard-backend"] == "cheap"
    with pytest.raises(openai.BadRequestError) as error:
        ask(
            gateway,
            "router-knn",
            POEMS[2],
            extra_body={"routing": {"max_cost_usd": 0.001, "min_quality": 0.9}},
        )
    assert error.value.code == "no_backend_fits"


def test_a_streamed_reply_arrives_in_chunks_with_the_routing_in_the_last(gateway):
    stream = client(gateway).chat.completions.create(
        model="router-knn", messages=[{"role": "user", "content": MATH[1]}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: " + MATH[1]
    routing = chunks[-1].model_extra["routing"]
    assert routing["backend"] == "cheap" and routing["cost_usd"] > 0
    assert chunks[-1].usage.prompt_tokens == 10  # asked of the upstream with stream_options


def test_without_upstream_usage_the_cost_is_estimated_and_says_so(gateway):
    reply, _ = ask(gateway, "quiet", "count these tokens please")
    assert reply.usage.completion_tokens > 0
    assert reply.model_extra["routing"]["cost_estimated"] is True


def test_the_async_client_streams_and_completes_concurrently(gateway):
    async def run():
        async_client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": MATH[2]}]
        replies = await asyncio.gather(
            *[async_client.chat.completions.create(model="router-knn", messages=messages) for _ in range(16)]
        )
        stream = await async_client.chat.completions.create(
            model="router-knn", messages=messages, stream=True
        )
        parts = [chunk async for chunk in stream]
        await async_client.close()
        return replies, parts

    replies, parts = asyncio.run(run())
    assert {r.model for r in replies} == {"cheap"}
    assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices) == "echo: " + MATH[2]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
            },
        },
    }
]
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}},
}


def test_unknown_fields_pass_through_to_the_upstream(gateway):
    reply, _ = ask(
        gateway,
        "router-fixed",
        "with tools",
        tools=TOOLS,
        response_format=RESPONSE_FORMAT,
        seed=3,
        extra_body={"routing": {"exclude": ["dear"]}, "vendor_option": {"x": [1, None]}},
    )
    assert reply.choices[0].message.content == "echo: with tools"
    received = reply.model_extra["mock_received"]  # what the upstream got, besides the messages
    assert received["tools"] == TOOLS
    assert received["response_format"] == RESPONSE_FORMAT
    assert received["seed"] == 3
    assert received["vendor_option"] == {"x": [1, None]}
    assert received["model"] == "echo" and "routing" not in received


def test_unknown_fields_pass_through_to_a_streaming_upstream(gateway):
    chunks = list(
        client(gateway).chat.completions.create(
            model="cheap",
            messages=[{"role": "user", "content": "with tools"}],
            tools=TOOLS,
            response_format=RESPONSE_FORMAT,
            seed=5,
            stream=True,
        )
    )
    received = chunks[0].model_extra["mock_received"]
    assert (received["tools"], received["response_format"], received["seed"]) == (TOOLS, RESPONSE_FORMAT, 5)


def test_a_whole_call_never_sends_stream_options_upstream(gateway):
    reply, _ = ask(gateway, "cheap", "no stream", extra_body={"stream_options": {"include_usage": True}})
    assert reply.choices[0].message.content == "echo: no stream"  # the mock, like OpenAI, answers 400 to it
    assert "stream_options" not in reply.model_extra["mock_received"]


@pytest.mark.parametrize("stream_options", [None, "yes", 7, {}, {"include_usage": False}])
def test_stream_options_that_are_null_or_not_an_object_count_as_absent(gateway, stream_options):
    chunks = list(
        client(gateway).chat.completions.create(
            model="cheap",
            messages=[{"role": "user", "content": "odd options"}],
            stream=True,
            extra_body={"stream_options": stream_options},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: odd options"
    assert chunks[0].model_extra["mock_received"]["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks)


@pytest.mark.parametrize("model", ["cheap", "router-knn", "quiet"])
def test_without_include_usage_every_streamed_chunk_has_a_choice(gateway, model):
    chunks = list(
        client(gateway).chat.completions.create(
            model=model, messages=[{"role": "user", "content": MATH[4]}], stream=True
        )
    )
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.choices[0].delta is not None  # the common client loop never meets choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: " + MATH[4]
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert last.model_extra["routing"]["backend"] in {"cheap", "quiet"}
    assert all("routing" not in c.model_extra for c in chunks[:-1])


@pytest.mark.parametrize(("model", "prompt_tokens"), [("cheap", 10), ("quiet", None)])
def test_with_include_usage_the_last_chunk_has_openais_shape(gateway, model, prompt_tokens):
    chunks = list(
        client(gateway).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "count me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *answer, last = chunks
    assert all(c.choices for c in answer) and answer[-1].choices[0].finish_reason == "stop"
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == prompt_tokens if prompt_tokens else last.usage.prompt_tokens > 0
    assert last.usage.model_extra["estimated"] is (prompt_tokens is None)
    assert last.model_extra["routing"]["backend"] == model


def test_models_lists_backends_routers_and_auto(gateway):
    ids = {m.id for m in client(gateway).models.list()}
    assert {"cheap", "dear", "router-knn", "router-fixed", "auto"} <= ids


def test_health_and_readiness(gateway):
    assert httpx.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(gateway.url + "/readyz").status_code == 200


@pytest.mark.parametrize(
    ("backend", "error_class", "status"),
    [
        ("broken", openai.InternalServerError, 502),
        ("down", openai.InternalServerError, 502),
        ("hanging", openai.InternalServerError, 504),
        ("garbage", openai.InternalServerError, 502),
        ("picky", openai.BadRequestError, 400),
    ],
)
def test_failing_upstreams_become_clear_errors_without_secrets(gateway, backend, error_class, status, caplog):
    secret_prompt = "my password is hunter2, what is 2+2?"
    with caplog.at_level(logging.DEBUG), pytest.raises(error_class) as error:
        ask(gateway, backend, secret_prompt)
    assert error.value.status_code == status
    message = error.value.response.text
    assert backend in message
    for secret in (secret_prompt, "hunter2", UPSTREAM_KEY):
        assert secret not in message and secret not in caplog.text
    reply, _ = ask(gateway, "cheap", "still there?")
    assert reply.choices[0].message.content == "echo: still there?"


def test_retries_ride_out_a_flaky_upstream(gateway, upstream):
    reply, _ = ask(gateway, "flaky", "try again")
    assert reply.choices[0].message.content == "echo: try again"
    assert httpx.get(upstream.url + "/calls").json()["flaky-1"] == 2


def test_a_failing_first_choice_falls_back_to_the_next_best_backend(gateway):
    reply, headers = ask(gateway, "router-fallback", POEMS[3])
    assert headers["x-routeyard-backend"] == "cheap"
    attempts = reply.model_extra["routing"]["attempts"]
    assert [a["backend"] for a in attempts] == ["broken", "cheap"]
    assert attempts[0]["status"] == "upstream_error" and attempts[1]["status"] == "ok"


def test_a_stream_cut_midway_ends_with_an_error_chunk(gateway):
    stream = client(gateway).chat.completions.create(
        model="cutter", messages=[{"role": "user", "content": "one two three four five"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="cutter cut its answer"):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert "".join(received).startswith("echo:")
    assert ask(gateway, "cheap", "alive")[0].choices[0].message.content == "echo: alive"


def test_the_circuit_breaker_stops_calling_an_upstream_that_keeps_failing(
    upstream, artifact, tmp_path, monkeypatch
):
    settings = gateway_settings(upstream.url, artifact, breaker_failures=2, breaker_cooldown_seconds=60)
    _app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        before = httpx.get(upstream.url + "/calls").json().get("fail-500", 0)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                ask(server, "broken", "x")
        after_two = httpx.get(upstream.url + "/calls").json()["fail-500"]
        with pytest.raises(openai.InternalServerError) as error:
            ask(server, "broken", "x")
        assert "cooling down" in error.value.message
        assert httpx.get(upstream.url + "/calls").json()["fail-500"] == after_two > before
    finally:
        server.__exit__(None, None, None)


def test_a_router_never_routes_to_the_backends_its_config_excludes(upstream, artifact, tmp_path, monkeypatch):
    settings = gateway_settings(upstream.url, artifact)
    excluding = {"name": "router-thrifty", "kind": "knn", "artifact": str(artifact), "exclude": ["dear"]}
    settings["routers"].append(excluding)
    _app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        reply, headers = ask(server, "router-thrifty", POEMS[0])  # a poem: only the dear model is right
        assert headers["x-routeyard-backend"] == "cheap"
        allowed = {c["backend"]: c["allowed"] for c in reply.model_extra["routing"]["candidates"]}
        assert allowed == {"cheap": True, "dear": False}
        assert ask(server, "router-knn", POEMS[0])[1]["x-routeyard-backend"] == "dear"  # others still may
        assert ask(server, "dear", "named directly")[1]["x-routeyard-backend"] == "dear"
    finally:
        server.__exit__(None, None, None)


def test_client_keys_are_required_when_configured(upstream, artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_KEYS", "key-one,key-two")
    settings = gateway_settings(upstream.url, artifact, client_keys_env="GATEWAY_KEYS")
    _app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        with pytest.raises(openai.AuthenticationError):
            ask(server, "cheap", "hi")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0).models.list()
        keyed = openai.OpenAI(base_url=server.url + "/v1", api_key="key-two", max_retries=0)
        reply = keyed.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "echo: hi"
    finally:
        server.__exit__(None, None, None)


def test_concurrent_routed_requests_are_embedded_in_micro_batches(gateway_app_and_server):
    app, server = gateway_app_and_server

    async def burst():
        async_client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": MATH[3]}]
        await asyncio.gather(
            *[async_client.chat.completions.create(model="router-knn", messages=messages) for _ in range(32)]
        )
        await async_client.close()

    batcher = runtime_of(app).batcher
    assert batcher is not None
    before = batcher.batches
    asyncio.run(burst())
    assert 1 <= batcher.batches - before < 32
