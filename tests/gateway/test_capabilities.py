"""Capability-aware routing: a request goes only to backends that can serve it (tools, images, a JSON
schema, its prompt's length, the output it asks for), the ``routing`` object says which were avoided and
why, and a request nothing can serve is a 400 naming what is missing. Through the openai SDK against
gateways under uvicorn and the mock upstream.

In the gateway here ``cheap`` (what router-knn picks for arithmetic) serves neither tools, images nor
JSON schemas, takes prompts up to 200 tokens and answers up to 100; ``dear`` answers up to 4096.
"""

import openai
import pytest

from routeyard.gateway.capabilities import Requirements, requirements
from routeyard.gateway.wire import ChatCompletionRequest
from tests.gateway.conftest import MATH, gateway_settings, start_gateway

CHEAP_LIMITS = {
    "tools": False,
    "vision": False,
    "json_schema": False,
    "max_context_tokens": 200,
    "max_output_tokens": 100,
}
TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]
SCHEMA = {"type": "json_schema", "json_schema": {"name": "sum", "schema": {"type": "object"}}}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


@pytest.fixture(scope="module")
def gateway(upstream, artifact, tmp_path_factory):
    settings = gateway_settings(upstream.url, artifact)
    for backend in settings["backends"]:
        if backend["name"] == "cheap":
            backend["capabilities"] = CHEAP_LIMITS
        if backend["name"] == "dear":
            backend["capabilities"] = {"max_output_tokens": 4096}
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(settings, tmp_path_factory.mktemp("capabilities"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def routing_of(server, content, model="router-knn", **kwargs):
    reply = client(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], **kwargs
    )
    return reply.model_extra["routing"]


def test_a_plain_request_routes_as_before_and_lists_no_exclusions(gateway, upstream, artifact, tmp_path):
    plain = routing_of(gateway, MATH[0])
    assert plain["backend"] == "cheap" and "excluded" not in plain
    monkeypatch = pytest.MonkeyPatch()
    _, unlimited = start_gateway(gateway_settings(upstream.url, artifact), tmp_path, monkeypatch)
    try:
        before = routing_of(unlimited, MATH[0])
    finally:
        unlimited.__exit__(None, None, None)
        monkeypatch.undo()
    assert before["backend"] == plain["backend"] and before["candidates"] == plain["candidates"]
    assert "excluded" not in before


def test_a_tools_request_avoids_a_backend_without_tools_and_says_why(gateway):
    routing = routing_of(gateway, MATH[1], tools=TOOLS)
    assert routing["backend"] == "dear"
    assert routing["excluded"] == {"cheap": "does not support tools"}
    assert {c["backend"]: c["allowed"] for c in routing["candidates"]}["cheap"] is False


def test_an_image_part_avoids_a_backend_without_vision(gateway):
    routing = routing_of(gateway, [{"type": "text", "text": MATH[2]}, IMAGE])
    assert routing["backend"] == "dear"
    assert routing["excluded"] == {"cheap": "does not support image input (vision)"}


def test_a_json_schema_avoids_a_backend_without_json_schema(gateway):
    routing = routing_of(gateway, MATH[3], response_format=SCHEMA)
    assert routing["backend"] == "dear"
    assert "json_schema" in routing["excluded"]["cheap"]


def test_a_long_prompt_avoids_a_backend_with_a_small_context(gateway):
    long_prompt = MATH[4] + " Show every step of the working, carefully." * 40
    routing = routing_of(gateway, long_prompt)
    assert routing["backend"] == "dear"
    assert "exceeds its max_context_tokens 200" in routing["excluded"]["cheap"]


def test_max_tokens_above_a_backends_max_output_avoids_it(gateway):
    routing = routing_of(gateway, MATH[5], max_tokens=500)
    assert routing["backend"] == "dear"
    assert routing["excluded"] == {"cheap": "max_tokens 500 exceeds its max_output_tokens 100"}
    within = routing_of(gateway, MATH[5], max_completion_tokens=100)
    assert within["backend"] == "cheap" and "excluded" not in within


def test_a_stream_lists_the_exclusions_in_its_last_chunk(gateway):
    chunks = list(
        client(gateway).chat.completions.create(
            model="router-knn", messages=[{"role": "user", "content": MATH[6]}], tools=TOOLS, stream=True
        )
    )
    routing = chunks[-1].model_extra["routing"]
    assert routing["backend"] == "dear" and routing["excluded"] == {"cheap": "does not support tools"}


def test_nothing_can_serve_is_a_400_naming_the_capability(gateway):
    with pytest.raises(openai.BadRequestError) as fixed:
        routing_of(gateway, MATH[7], model="router-fixed", tools=TOOLS)
    assert "no backend supports tools" in fixed.value.message
    with pytest.raises(openai.BadRequestError) as routed:
        routing_of(gateway, MATH[7], max_tokens=10_000)
    assert "no backend supports max_tokens 10000 (max_output_tokens)" in routed.value.message
    assert routed.value.code == "unsupported_capability"


def test_a_backend_named_directly_that_cannot_serve_is_a_400(gateway):
    with pytest.raises(openai.BadRequestError) as error:
        routing_of(gateway, MATH[8], model="cheap", tools=TOOLS)
    assert "backend cheap cannot serve this request: it does not support tools" in error.value.message
    assert error.value.code == "unsupported_capability"
    assert routing_of(gateway, MATH[8], model="cheap")["backend"] == "cheap"  # without tools it can
    assert routing_of(gateway, MATH[8], model="dear", tools=TOOLS)["backend"] == "dear"


def request(**fields):
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **fields}
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, Requirements()),
        ({"tools": TOOLS}, Requirements(tools=True)),
        ({"tools": []}, Requirements()),
        ({"functions": [{"name": "add"}]}, Requirements(tools=True)),
        ({"response_format": SCHEMA}, Requirements(json_schema=True)),
        ({"response_format": {"type": "json_object"}}, Requirements()),
        ({"max_tokens": 50}, Requirements(output_tokens=50)),
        ({"max_tokens": 50, "max_completion_tokens": 80}, Requirements(output_tokens=80)),
        ({"messages": [{"role": "user", "content": [IMAGE]}]}, Requirements(vision=True)),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
            Requirements(),
        ),
    ],
)
def test_requirements_of_request_shapes(fields, expected):
    needs = requirements(request(**fields))
    assert (needs.tools, needs.vision, needs.json_schema, needs.output_tokens) == (
        expected.tools,
        expected.vision,
        expected.json_schema,
        expected.output_tokens,
    )


def test_prompt_tokens_grow_with_the_prompt():
    short = requirements(request()).prompt_tokens
    long = requirements(request(messages=[{"role": "user", "content": "word " * 300}])).prompt_tokens
    assert 0 < short < 10 and long >= 300
