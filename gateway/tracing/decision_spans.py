"""The routing decision's spans: ``decide`` around a router's decision, and one request's ``embed`` and
``predict`` spans, timed by the micro-batcher's worker thread (``routeyard.gateway.embedding_batcher``)
for the batch that carried it."""

from collections.abc import Awaitable, Mapping
from typing import Any

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from routeyard.gateway.router import Decision
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.span_failure import mark_failed


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
            mark_failed(span, exc)
            raise
        span.set_attributes(_decision_attributes(decision))
        return decision


def _decision_attributes(decision: Decision) -> dict[str, Any]:
    """What ``decision`` decided: the ranking, the willingness to pay and its source, and the first
    choice with its predicted quality and $ (each only when known)."""
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
    """A span ``name`` already over: started and ended at ``times_ns`` (``time.time_ns``), failed
    with ``error`` when one is given."""
    span = tracer.start_span(name, attributes=attributes, start_time=times_ns[0])
    if error is not None:
        mark_failed(span, error)
    span.end(end_time=times_ns[1])
