"""OpenTelemetry tracing: a span for each request, its decision, embedding and prediction, each upstream
attempt and each judge grading, following the GenAI semantic conventions where they apply.

**Off** unless ``otlp_endpoint`` is set (spans go by OTLP/HTTP to ``<otlp_endpoint>/v1/traces``) or
``create_app`` is given a tracer provider (tests: an in-memory exporter). Off, nothing is built: no
provider, no tracer, no middleware, no wrapper; each place that could trace costs one ``is None`` check.
Nothing is global either (no global tracer provider or propagator): two gateways in one process trace
apart.

**On**, the spans of one request (all under the caller's trace when it sent a W3C ``traceparent``):

- ``POST /v1/chat/completions`` (also ``/v1/messages``, ``/v1/responses``), SERVER, by
  :class:`~.request_spans.RequestSpans`: ends when the last byte of the response is sent (a stream's
  too), with the status and the ``x-routeyard-*`` facts of the reply (request id, router, backend, $);
- ``decide`` (:func:`~.decision_spans.traced_decision`, called by each router kind): router,
  willingness to pay, the ranking and the first choice's predicted quality and $;
- ``embed`` and ``predict`` (:func:`~.decision_spans.record_batch_spans`, called by the micro-batcher,
  ``routeyard.gateway.embedding_batcher``): one each per request, timed by the worker thread that
  handled its batch (``routeyard.batch_size``);
- ``chat <model>``, CLIENT, per upstream attempt (:class:`~.traced_backend.TracedBackend`): provider,
  request and response model, tokens, $, ``error.type`` when it failed; a stream's ends with the stream;
- ``judge <name>`` per grading (:class:`~.traced_judge.TracedJudge`): ``gen_ai.evaluation.*`` and the
  grader's $.

No span carries prompt or answer text, nor an error's message.

One concept per module, each imported from where it lives:

- ``provider``: building the OTLP tracer provider from the settings, the gateway's tracer, stopping it;
- ``request_spans``: the ASGI middleware making the request's SERVER span;
- ``decision_spans``: the ``decide``, ``embed`` and ``predict`` spans;
- ``traced_backend``: a backend whose calls are CLIENT spans;
- ``traced_judge``: a judge whose gradings are spans;
- ``span_failure``: marking a span failed, the one way every span above records an error.

This module holds only :data:`Tracer`, the type every traced part is given.
"""

from opentelemetry import trace

Tracer = trace.Tracer
