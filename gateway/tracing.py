"""OpenTelemetry tracing: a span for each request, its decision, embedding and prediction, each upstream
attempt and each judge grading, following the GenAI semantic conventions where they apply.

**Off** unless ``otlp_endpoint`` is set (spans go by OTLP/HTTP to ``<otlp_endpoint>/v1/traces``) or
``create_app`` is given a tracer provider (tests: an in-memory exporter). Off, nothing is built: no
provider, no tracer, no middleware, no wrapper; each place that could trace costs one ``is None`` check.
Nothing is global either (no global tracer provider or propagator): two gateways in one process trace
apart.

**On**, the spans of one request (all under the caller's trace when it sent a W3C ``traceparent``):

- ``POST /v1/chat/completions`` (also ``/v1/messages``, ``/v1/responses``), SERVER, by
  :class:`RequestSpans`: ends when the last byte of the response is sent (a stream's too), with the
  status and the ``x-routeyard-*`` facts of the reply (request id, router, backend, $);
- ``decide`` (:func:`traced_decision`, called by each router kind): router, willingness to pay, the
  ranking and the first choice's predicted quality and $;
- ``embed`` and ``predict`` (the micro-batcher, ``routeyard.gateway.embedding_batcher``): one each per
  request, timed by the worker thread that handled its batch (``routeyard.batch_size``);
- ``chat <model>``, CLIENT, per upstream attempt (:class:`TracedBackend`): provider, request and
  response model, tokens, $, ``error.type`` when it failed; a stream's ends with the stream;
- ``judge <name>`` per grading (:class:`TracedJudge`): ``gen_ai.evaluation.*`` and the grader's $.

No span carries prompt or answer text, nor an error's message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
    url_attributes,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from routeyard.gateway.backends.backend import Backend, Reply, Usage
from routeyard.gateway.errors import GatewayError
from routeyard.gateway.router import Decision
from routeyard.judges.judge import Answer, Judge, Judgement

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from routeyard.gateway.backends.kinds import BackendConfig
    from routeyard.gateway.settings import GatewaySettings

Tracer = trace.Tracer

TRACED_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v1/responses"})
"""The endpoints a request span is made for (the front doors; not probes, metrics or admin)."""

OTLP_TRACES_PATH = "/v1/traces"
_PROPAGATOR = TraceContextTextMapPropagator()
_REPLY_HEADERS = {  # the reply's x-routeyard-* headers noted on its request span
    b"x-routeyard-request-id": "routeyard.request_id",
    b"x-routeyard-router": "routeyard.router",
    b"x-routeyard-backend": "routeyard.backend",
    b"x-routeyard-plan": "routeyard.plan",
    b"x-routeyard-cache": "routeyard.cache",
}


# building


def tracer_provider_for(settings: GatewaySettings) -> TracerProvider | None:
    """A provider exporting in batches to ``settings.otlp_endpoint`` over OTLP/HTTP (protobuf), as
    service ``settings.otlp_service_name``; None when no endpoint is set (tracing off)."""
    if settings.otlp_endpoint is None:
        return None
    # imported only when tracing is on: the SDK and the exporter are not loaded otherwise
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.otlp_service_name}))
    endpoint = settings.otlp_endpoint.rstrip("/") + OTLP_TRACES_PATH
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def gateway_tracer(provider: TracerProvider) -> Tracer:
    """The gateway's tracer from ``provider``."""
    return provider.get_tracer("routeyard.gateway")


async def stop_tracing(provider: TracerProvider, *, owned: bool) -> None:
    """Export the spans still buffered: shut ``provider`` down when the gateway built it (``owned``),
    else only flush it (its owner shuts it down). Off the loop: exporting is blocking HTTP."""
    await asyncio.to_thread(provider.shutdown if owned else provider.force_flush)


# the request


class RequestSpans:
    """ASGI middleware: a SERVER span around each request to :data:`TRACED_PATHS`, a child of the
    caller's ``traceparent`` when it sent one, current while the request is served (so the spans of
    its decision and calls are its children) and ended when the response's last byte is sent."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in TRACED_PATHS:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        attributes = {
            http_attributes.HTTP_REQUEST_METHOD: method,
            http_attributes.HTTP_ROUTE: path,
            url_attributes.URL_PATH: path,
        }
        with self.tracer.start_as_current_span(
            f"{method} {path}",
            context=_PROPAGATOR.extract(_trace_headers(scope["headers"])),
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:

            async def noting_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    _note_response(span, message["status"], message.get("headers", ()))
                await send(message)

            try:
                await self.app(scope, receive, noting_send)
            except BaseException as exc:
                failed(span, exc)
                raise


def _trace_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The W3C trace-context headers among raw ASGI ``headers``."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }


def _note_response(span: trace.Span, status: int, headers: Any) -> None:
    """The response's status (a 5xx marks the span an error) and its routing headers on ``span``."""
    span.set_attribute(http_attributes.HTTP_RESPONSE_STATUS_CODE, status)
    if status >= 500:
        span.set_attribute(error_attributes.ERROR_TYPE, str(status))
        span.set_status(Status(StatusCode.ERROR))
    for name, value in headers:
        if (attribute := _REPLY_HEADERS.get(name)) is not None:
            span.set_attribute(attribute, value.decode("latin-1"))
        elif name == b"x-routeyard-cost-usd" and (cost := _number(value)) is not None:
            span.set_attribute("routeyard.cost_usd", cost)  # a stream's header is a prediction: not noted


def _number(value: bytes) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def failed(span: trace.Span, error: BaseException) -> None:
    """Mark ``span`` failed with ``error``'s kind as ``error.type`` (a gateway error's code, else the
    exception's class; never its message), and its HTTP status when it has one."""
    kind = error.code if isinstance(error, GatewayError) else type(error).__name__
    span.set_attribute(error_attributes.ERROR_TYPE, kind)
    if isinstance(error, GatewayError):
        span.set_attribute("routeyard.error.status", error.status)
    span.set_status(Status(StatusCode.ERROR))


# the decision


async def traced_decision(tracer: Tracer, router: str, deciding: Awaitable[Decision]) -> Decision:
    """``await deciding`` (a router's decision) in a ``decide`` span noting what it decided."""
    with tracer.start_as_current_span(
        "decide",
        attributes={"routeyard.router": router},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            decision = await deciding
        except BaseException as exc:
            failed(span, exc)
            raise
        span.set_attributes(_decision_attributes(decision))
        return decision


def _decision_attributes(decision: Decision) -> dict[str, Any]:
    attributes: dict[str, Any] = {"routeyard.ranked": decision.ranked}
    if decision.willingness_to_pay is not None:
        attributes["routeyard.willingness_to_pay"] = decision.willingness_to_pay
    if decision.willingness_to_pay_source is not None:
        attributes["routeyard.willingness_to_pay.source"] = decision.willingness_to_pay_source
    if decision.ranked:
        chosen = decision.ranked[0]
        attributes["routeyard.chosen"] = chosen
        candidate = decision.candidate(chosen)
        if candidate is not None and candidate.predicted_quality is not None:
            attributes["routeyard.predicted_quality"] = candidate.predicted_quality
        if candidate is not None and candidate.predicted_cost_usd is not None:
            attributes["routeyard.predicted_cost_usd"] = candidate.predicted_cost_usd
    return attributes


# embedding and predicting


def record_batch_spans(
    tracer: Tracer,
    *,
    embedded_ns: tuple[int, int] | None,
    predicted_ns: tuple[int, int] | None,
    batch_size: int,
    embedder: str,
    error: BaseException | None,
) -> None:
    """One request's ``embed`` span (None ``embedded_ns``: its vector was cached) and ``predict`` span
    (None ``predicted_ns``: it asked no predictor), under the current span, timed by the batcher's
    worker thread (``time.time_ns``, start and end) for its batch of ``batch_size`` texts; ``error``
    (what failed the request) marks the last of them. ``embedder``: its identity."""
    batch = {"routeyard.batch_size": batch_size}
    if embedded_ns is not None:
        attributes = {
            **batch,
            gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.EMBEDDINGS.value,
            "routeyard.embedder": embedder,
        }
        _timed_span(tracer, "embed", embedded_ns, attributes, error if predicted_ns is None else None)
    if predicted_ns is not None:
        attributes = {**batch, "routeyard.embedding_cached": embedded_ns is None}
        _timed_span(tracer, "predict", predicted_ns, attributes, error)


def _timed_span(
    tracer: Tracer,
    name: str,
    times_ns: tuple[int, int],
    attributes: Mapping[str, Any],
    error: BaseException | None,
) -> None:
    span = tracer.start_span(name, attributes=attributes, start_time=times_ns[0])
    if error is not None:
        failed(span, error)
    span.end(end_time=times_ns[1])


# upstream attempts


class TracedBackend:
    """``backend`` with a CLIENT span per call (see the module docstring); ``provider`` is its
    ``gen_ai.provider.name`` (its kind: ``openai``, ``anthropic``, ``replay``…), ``base_url`` where it
    is served (``server.address`` and ``server.port``; None: not over HTTP). Every other attribute is
    ``backend``'s (its ``breaker``, ``price``…)."""

    def __init__(self, backend: Backend, tracer: Tracer, provider: str, base_url: str | None = None) -> None:
        self.name = backend.name
        self.backend = backend
        self._tracer = tracer
        self._model: str | None = getattr(backend, "upstream_model", None)
        self._attributes: dict[str, Any] = {
            gen_ai.GEN_AI_OPERATION_NAME: gen_ai.GenAiOperationNameValues.CHAT.value,
            gen_ai.GEN_AI_PROVIDER_NAME: provider,
            "routeyard.backend": self.name,
        }
        if base_url is not None:
            url = urlsplit(base_url)
            self._attributes[server_attributes.SERVER_ADDRESS] = url.hostname or ""
            self._attributes[server_attributes.SERVER_PORT] = url.port or (
                443 if url.scheme == "https" else 80
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    async def complete(self, body: dict[str, Any]) -> Reply:
        """``backend.complete(body)`` in a span."""
        with self._tracer.start_as_current_span(
            self._span_name(body),
            kind=SpanKind.CLIENT,
            attributes=self._request_attributes(body, stream=False),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                reply = await self.backend.complete(body)
            except BaseException as exc:
                failed(span, exc)
                raise
            _note_answer(span, reply.body, reply.usage, reply.cost_usd)
            return reply

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """``backend.stream(body)`` in a span that ends with the stream, or when the gateway stops
        reading it before its last chunk (``routeyard.stream.closed_early``: the client left, or a
        gap outlasted its deadline)."""
        span = self._tracer.start_span(
            self._span_name(body),
            kind=SpanKind.CLIENT,
            attributes=self._request_attributes(body, stream=True),
        )
        finished = False
        chunks = self.backend.stream(body)
        try:
            async for chunk in chunks:
                if "usage" in chunk or "routeyard_cost_usd" in chunk:  # the last chunk
                    finished = True
                    _note_stream_end(span, chunk)
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):  # the gateway stopped reading it (client left)
            if not finished:
                span.set_attribute("routeyard.stream.closed_early", True)
            raise
        except BaseException as exc:
            failed(span, exc)
            raise
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()  # closed early: the upstream's response is closed now
            span.end()

    def _span_name(self, body: dict[str, Any]) -> str:
        return f"chat {self._model or body.get('model', self.name)}"

    def _request_attributes(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        attributes = {
            **self._attributes,
            gen_ai.GEN_AI_REQUEST_MODEL: self._model or str(body.get("model", self.name)),
            gen_ai.GEN_AI_REQUEST_STREAM: stream,
        }
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(max_tokens, int):
            attributes[gen_ai.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
        for key, attribute in (
            ("temperature", gen_ai.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", gen_ai.GEN_AI_REQUEST_TOP_P),
        ):
            if isinstance(body.get(key), int | float):
                attributes[attribute] = float(body[key])
        return attributes


def _note_answer(span: trace.Span, body: dict[str, Any], usage: Usage, cost_usd: float) -> None:
    """A whole answer's response model and id, finish reasons, tokens and $ on ``span``."""
    _note_response_ids(span, body)
    reasons = [c.get("finish_reason") for c in body.get("choices", ()) if isinstance(c, dict)]
    if finish := [r for r in reasons if isinstance(r, str)]:
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_FINISH_REASONS, finish)
    _note_usage(span, usage, cost_usd)


def _note_stream_end(span: trace.Span, chunk: dict[str, Any]) -> None:
    """A stream's last chunk's response model and id, tokens and $ on ``span``."""
    _note_response_ids(span, chunk)
    usage = Usage.from_json(chunk.get("usage"))
    cost = chunk.get("routeyard_cost_usd")
    if usage is not None:
        _note_usage(span, usage, float(cost) if isinstance(cost, int | float) else None)


def _note_response_ids(span: trace.Span, body: dict[str, Any]) -> None:
    if isinstance(model := body.get("model"), str):
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_MODEL, model)
    if isinstance(response_id := body.get("id"), str):
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_ID, response_id)


def _note_usage(span: trace.Span, usage: Usage, cost_usd: float | None) -> None:
    span.set_attribute(gen_ai.GEN_AI_USAGE_INPUT_TOKENS, usage.prompt_tokens)
    span.set_attribute(gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS, usage.completion_tokens)
    span.set_attribute("routeyard.usage.estimated", usage.estimated)
    if cost_usd is not None:
        span.set_attribute("routeyard.cost_usd", cost_usd)


def traced_backends(
    backends: dict[str, Backend], configs: Sequence[BackendConfig], tracer: Tracer | None
) -> dict[str, Backend]:
    """``backends`` each in a :class:`TracedBackend` (its provider and address from its config among
    ``configs``), or as they are when ``tracer`` is None."""
    if tracer is None:
        return backends
    return {
        config.name: TracedBackend(
            backends[config.name], tracer, config.kind, getattr(config, "base_url", None)
        )
        for config in configs
    }


# judges


class TracedJudge:
    """``judge`` with a span per grading: ``gen_ai.evaluation.name`` and ``.score.value``, whether it
    was confident, the model judged, and a paid grading's grader and $ (its own upstream call, through
    a traced backend, is a child span)."""

    def __init__(self, judge: Judge, tracer: Tracer) -> None:
        self.name = judge.name
        self.inner = judge
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        """``judge.judge(prompt, answer)`` in a span."""
        attributes = {gen_ai.GEN_AI_EVALUATION_NAME: self.name}
        if answer.model is not None:
            attributes["routeyard.judge.answer_model"] = answer.model
        with self._tracer.start_as_current_span(
            f"judge {self.name}", attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                judgement = await self.inner.judge(prompt, answer)
            except BaseException as exc:
                failed(span, exc)
                raise
            span.set_attribute(gen_ai.GEN_AI_EVALUATION_SCORE_VALUE, judgement.score)
            span.set_attribute("routeyard.judge.confident", judgement.confident)
            span.set_attribute("routeyard.cost_usd", judgement.cost_usd)
            if judgement.grader is not None:
                span.set_attribute("routeyard.judge.grader", judgement.grader)
            return judgement


def traced_judge(judge: Judge, tracer: Tracer | None) -> Judge:
    """``judge`` in a :class:`TracedJudge`, or itself when ``tracer`` is None."""
    return judge if tracer is None else TracedJudge(judge, tracer)
