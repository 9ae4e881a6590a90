"""OpenTelemetry tracing (routeyard.gateway.tracing) of a real gateway under uvicorn, called by the
official ``openai`` and ``anthropic`` SDKs, its spans caught by the SDK's in-memory exporter; and once
exported by OTLP/HTTP to a real receiver on 127.0.0.1.
"""

import time
from collections.abc import Sequence
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from routeyard.gateway.app import create_app
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import load_settings
from routeyard.gateway.tracing.request_spans import RequestSpans
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import (
    MATH,
    POEMS,
    UPSTREAM_KEY,
    _ready_or_failed,
    gateway_settings,
    start_gateway,
)

WRONG, RIGHT = "a wrong answer", "the right answer [good]"
TRACE_ID, PARENT_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def start_traced_gateway(settings_dict, tmp_path, monkeypatch, tracer_provider):
    """conftest's ``start_gateway``, the app traced by ``tracer_provider``."""
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings_dict))
    app = create_app(load_settings(path), embedder=HashingEmbedder(), tracer_provider=tracer_provider)
    server = ServerThread(app).__enter__()
    deadline = time.monotonic() + 60.0
    while not _ready_or_failed(app) and time.monotonic() < deadline:
        time.sleep(0.02)
    return app, server


def traced_settings(upstream_url, artifact):
    """conftest's gateway plus a cascade (``wrong-cheap`` then ``right-dear``, graded by an LLM judge
    through ``grader``, which gives 2/10 to the wrong answer)."""
    settings = gateway_settings(upstream_url, artifact)
    v1 = upstream_url + "/v1"
    for name, model, price in (
        ("trickler", "trickle:0.05", 1.0),
        ("wrong-cheap", f"says:{WRONG}", 1.0),
        ("right-dear", f"says:{RIGHT}", 100.0),
        ("grader", "grader", 2.0),
    ):
        settings["backends"].append(
            {"name": name, "base_url": v1, "model": model, "output_usd_per_million": price, "retries": 0}
        )
    settings["routers"].append(
        {
            "name": "cascade",
            "kind": "cascade",
            "artifact": str(artifact),
            "backends": {"cheap": "wrong-cheap", "dear": "right-dear"},
            "judge": {"kind": "llm", "backend": "grader"},
        }
    )
    return settings


@pytest.fixture(scope="module")
def traced(upstream, artifact, tmp_path_factory):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_traced_gateway(
        traced_settings(upstream.url, artifact), tmp_path_factory.mktemp("traced"), monkeypatch, provider
    )
    yield app, server, exporter
    server.__exit__(None, None, None)
    monkeypatch.undo()
    provider.shutdown()


@pytest.fixture
def spans(traced):
    """A function returning the spans of the requests made since the test began, once every request
    span among them ended (the SDK's response can arrive just before its span ends)."""
    _, _, exporter = traced
    exporter.clear()

    def finished(requests: int = 1) -> list[ReadableSpan]:
        deadline = time.monotonic() + 5.0
        while len(_of_kind(exporter.get_finished_spans(), SpanKind.SERVER)) < requests:
            assert time.monotonic() < deadline, "the request spans did not end"
            time.sleep(0.01)
        return sorted(exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    return finished


def gpt(server: ServerThread, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, default_headers=headers
    )


def _of_kind(spans: Sequence[ReadableSpan], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = named(spans, name)
    return span


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def started(span: ReadableSpan) -> int:
    assert span.start_time is not None
    return span.start_time


def ended(span: ReadableSpan) -> int:
    assert span.end_time is not None
    return span.end_time


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    context = span.context
    assert context is not None
    return context.span_id


def attempts(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The upstream attempts (CLIENT spans), in the order they started."""
    return _of_kind(spans, SpanKind.CLIENT)


def assert_no_text(spans: Sequence[ReadableSpan], *texts: str) -> None:
    """No attribute of any span holds (a part of) any of ``texts``."""
    for span in spans:
        for value in (span.attributes or {}).values():
            values = value if isinstance(value, tuple) else (value,)
            for text in texts:
                assert not any(isinstance(v, str) and text[:20] in v for v in values), (span.name, value)


def test_a_routed_request_is_one_trace_request_decide_embed_predict_and_the_upstream_attempt(traced, spans):
    _, server, _ = traced
    raw = gpt(server).chat.completions.with_raw_response.create(
        model="router-knn", messages=[{"role": "user", "content": MATH[1]}], max_tokens=64, temperature=0.5
    )
    reply = raw.parse()
    assert reply.usage is not None
    got = spans()
    request = only(got, "POST /v1/chat/completions")
    assert request.kind == SpanKind.SERVER and request.parent is None
    assert attrs(request)["http.response.status_code"] == 200
    assert attrs(request)["routeyard.request_id"] == raw.headers["x-routeyard-request-id"]
    assert attrs(request)["routeyard.backend"] == raw.headers["x-routeyard-backend"] == "cheap"
    assert attrs(request)["routeyard.router"] == "router-knn"
    decide = only(got, "decide")
    assert parent_of(decide) == span_id(request)
    assert attrs(decide)["routeyard.router"] == "router-knn"
    assert attrs(decide)["routeyard.chosen"] == "cheap"
    assert attrs(decide)["routeyard.willingness_to_pay"] == 100.0
    assert attrs(decide)["routeyard.predicted_cost_usd"] == pytest.approx(0.0001)
    for step in (only(got, "embed"), only(got, "predict")):
        assert parent_of(step) == span_id(decide)
        assert attrs(step)["routeyard.batch_size"] >= 1
    assert ended(only(got, "embed")) <= started(only(got, "predict"))
    (attempt,) = attempts(got)
    assert attempt.name == "chat echo" and parent_of(attempt) == span_id(request)
    assert attrs(attempt)["gen_ai.operation.name"] == "chat"
    assert attrs(attempt)["gen_ai.provider.name"] == "openai"
    assert attrs(attempt)["gen_ai.request.model"] == "echo"
    assert attrs(attempt)["server.address"] == "127.0.0.1"
    assert attrs(attempt)["gen_ai.response.model"] == "echo"
    assert attrs(attempt)["gen_ai.request.max_tokens"] == 64
    assert attrs(attempt)["gen_ai.request.temperature"] == 0.5
    assert attrs(attempt)["gen_ai.usage.input_tokens"] == reply.usage.prompt_tokens
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == reply.usage.completion_tokens
    assert attrs(attempt)["routeyard.cost_usd"] == pytest.approx(float(raw.headers["x-routeyard-cost-usd"]))
    assert attempt.status.status_code == StatusCode.UNSET
    assert_no_text(got, MATH[1], reply.choices[0].message.content or MATH[1])


def test_a_streamed_attempt_ends_with_its_stream_and_counts_its_tokens(traced, spans):
    _, server, _ = traced
    stream = gpt(server).chat.completions.create(
        model="cheap",
        messages=[{"role": "user", "content": POEMS[0]}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    got = spans()
    request = only(got, "POST /v1/chat/completions")
    assert named(got, "decide") == []  # a backend named directly: nothing decided
    (attempt,) = attempts(got)
    assert attrs(attempt)["gen_ai.request.stream"] is True
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attrs(attempt)["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert "routeyard.stream.closed_early" not in attrs(attempt)
    assert started(request) < started(attempt) and ended(attempt) <= ended(request)
    assert_no_text(got, POEMS[0])


def test_a_stream_the_client_abandons_ends_its_attempt_marked_closed_early(traced, spans):
    _, server, _ = traced
    body = {"model": "trickler", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with (
        httpx.Client(base_url=server.url, timeout=10.0) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as reply,
    ):
        assert next(reply.iter_lines()).startswith("data: ")
    got = spans()
    (attempt,) = attempts(got)
    assert attrs(attempt)["routeyard.stream.closed_early"] is True
    assert attempt.status.status_code == StatusCode.UNSET  # the client left: not the upstream's failure
    assert ended(attempt) <= ended(only(got, "POST /v1/chat/completions"))


def test_a_failing_backend_is_an_error_attempt_then_the_fallback_answers(traced, spans):
    _, server, _ = traced
    raw = gpt(server).chat.completions.with_raw_response.create(
        model="router-fallback", messages=[{"role": "user", "content": POEMS[3]}]
    )
    assert raw.headers["x-routeyard-backend"] == "cheap"
    got = spans()
    failed, answered = attempts(got)
    assert attrs(failed)["routeyard.backend"] == "broken" and failed.name == "chat fail-500"
    assert failed.status.status_code == StatusCode.ERROR
    assert attrs(failed)["error.type"] == "upstream_error"
    assert "gen_ai.usage.output_tokens" not in attrs(failed)
    assert attrs(answered)["routeyard.backend"] == "cheap"
    assert answered.status.status_code == StatusCode.UNSET
    assert ended(failed) <= started(answered)
    assert attrs(only(got, "decide"))["routeyard.ranked"] == ("broken", "cheap")


def test_a_cascade_grading_is_a_judge_span_over_its_graders_call(traced, spans):
    _, server, _ = traced
    raw = gpt(server).chat.completions.with_raw_response.create(
        model="cascade", messages=[{"role": "user", "content": MATH[0]}]
    )
    assert raw.headers["x-routeyard-backend"] == "right-dear"
    got = spans()
    request = only(got, "POST /v1/chat/completions")
    first, second = named(got, "judge heuristics+llm:grader")
    assert parent_of(first) == span_id(request)
    assert attrs(first)["gen_ai.evaluation.name"] == "heuristics+llm:grader"
    assert attrs(first)["routeyard.judge.answer_model"] == "cheap"
    assert attrs(first)["gen_ai.evaluation.score.value"] == pytest.approx(0.2)
    assert attrs(first)["routeyard.judge.grader"] == "grader"
    assert attrs(first)["routeyard.cost_usd"] > 0.0
    assert attrs(second)["gen_ai.evaluation.score.value"] == pytest.approx(0.9)
    by_backend = [attrs(a)["routeyard.backend"] for a in attempts(got)]
    assert by_backend == ["wrong-cheap", "grader", "right-dear", "grader"]
    graders = [a for a in attempts(got) if attrs(a)["routeyard.backend"] == "grader"]
    assert [parent_of(g) for g in graders] == [span_id(first), span_id(second)]
    assert_no_text(got, MATH[0])  # (the mock's model names hold the answers: not checked)


def test_an_anthropic_message_is_traced_on_its_own_route(traced, spans):
    _, server, _ = traced
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    message = client.messages.create(
        model="router-knn", max_tokens=50, messages=[{"role": "user", "content": MATH[2]}]
    )
    got = spans()
    request = only(got, "POST /v1/messages")
    assert attrs(request)["http.route"] == "/v1/messages"
    assert parent_of(only(got, "decide")) == span_id(request)
    (attempt,) = attempts(got)
    assert attrs(attempt)["gen_ai.request.max_tokens"] == 50
    assert attrs(attempt)["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert_no_text(got, MATH[2])


def test_the_callers_traceparent_becomes_the_request_spans_parent(traced, spans):
    _, server, _ = traced
    client = gpt(server, traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    client.chat.completions.create(model="router-knn", messages=[{"role": "user", "content": MATH[3]}])
    got = spans()
    request = only(got, "POST /v1/chat/completions")
    assert request.parent is not None and request.parent.is_remote
    assert request.parent.span_id == int(PARENT_ID, 16)
    assert {s.context.trace_id for s in got} == {int(TRACE_ID, 16)}


def test_a_refused_request_is_a_request_span_with_its_status_and_nothing_else(traced, spans):
    _, server, _ = traced
    with pytest.raises(openai.NotFoundError):
        gpt(server).chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}])
    got = spans()
    assert [s.name for s in got] == ["POST /v1/chat/completions"]
    assert attrs(got[0])["http.response.status_code"] == 404
    assert got[0].status.status_code == StatusCode.UNSET  # a client's error is not the server's


def test_without_an_endpoint_or_a_provider_nothing_is_set_up_or_recorded(
    traced, upstream, artifact, tmp_path, monkeypatch
):
    _, _, exporter = traced
    app, server = start_gateway(gateway_settings(upstream.url, artifact), tmp_path, monkeypatch)
    try:
        exporter.clear()
        gpt(server).chat.completions.create(
            model="router-knn", messages=[{"role": "user", "content": MATH[4]}]
        )
        runtime = runtime_of(app)
        assert app.state.tracer is None
        assert all(m.cls is not RequestSpans for m in app.user_middleware)
        assert type(runtime.catalog.backends["cheap"]).__name__ == "OpenAiBackend"
        assert runtime.batcher is not None and runtime.batcher.tracer is None
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # nothing global
        assert exporter.get_finished_spans() == ()  # the traced gateway saw none of it
    finally:
        server.__exit__(None, None, None)


class TracesReceiver:
    """An OTLP/HTTP collector's front: records every ``POST /v1/traces`` body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.app = Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        self.bodies.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")


def test_an_otlp_endpoint_receives_the_spans_once_the_gateway_stops(
    upstream, artifact, tmp_path, monkeypatch
):
    receiver = TracesReceiver()
    with ServerThread(receiver.app) as collector:
        settings = gateway_settings(
            upstream.url, artifact, otlp_endpoint=collector.url, otlp_service_name="ry-test"
        )
        _, server = start_gateway(settings, tmp_path, monkeypatch)
        gpt(server).chat.completions.create(
            model="router-knn", messages=[{"role": "user", "content": MATH[5]}]
        )
        server.__exit__(None, None, None)  # stopping flushes the batch
        assert receiver.bodies and all(receiver.bodies)
    names, services = set(), set()
    for body in receiver.bodies:
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            services |= {
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            }
            names |= {s.name for scope in resource_spans.scope_spans for s in scope.spans}
    assert services == {"ry-test"}
    assert {"POST /v1/chat/completions", "decide", "embed", "predict", "chat echo"} <= names
