"""A traced backend: each upstream attempt a GenAI CLIENT span ``chat <model>`` (provider, request and
response model, tokens, $, ``error.type`` when it failed; a stream's ends with the stream), and the
gateway's backends wrapped so when tracing is on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes import server_attributes
from opentelemetry.trace import SpanKind

from routeyard.gateway.backends.backend import Backend, Reply, Usage
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.span_failure import mark_failed

if TYPE_CHECKING:
    from routeyard.gateway.backends.kinds import BackendConfig


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
            self._attributes.update(_server_attributes(base_url))

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
                mark_failed(span, exc)
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
            mark_failed(span, exc)
            raise
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()  # closed early: the upstream's response is closed now
            span.end()

    def _span_name(self, body: dict[str, Any]) -> str:
        """``chat <model>``: the upstream model, else the request's, else the backend's name."""
        return f"chat {self._model or body.get('model', self.name)}"

    def _request_attributes(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        """The span's attributes for a call with ``body``: the backend's, the request model, whether it
        streams, and its token cap, temperature and top_p when set."""
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


def _server_attributes(base_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of ``base_url`` (the scheme's default port when none)."""
    url = urlsplit(base_url)
    return {
        server_attributes.SERVER_ADDRESS: url.hostname or "",
        server_attributes.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
    }


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
    """The response model and id in ``body`` (an answer or a stream's chunk), when given, on ``span``."""
    if isinstance(model := body.get("model"), str):
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_MODEL, model)
    if isinstance(response_id := body.get("id"), str):
        span.set_attribute(gen_ai.GEN_AI_RESPONSE_ID, response_id)


def _note_usage(span: trace.Span, usage: Usage, cost_usd: float | None) -> None:
    """Input and output tokens (and whether they were estimated), and the $ when known, on ``span``."""
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
