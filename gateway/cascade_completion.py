"""Serving a chat completion through a cascade router: walk, then return the kept answer.

Every call of the walk is whole (not streamed): the judge needs the full answer before anything may
reach the client. A client that asked for a stream gets the kept answer afterwards as chunks (role and
content, then a last chunk with the finish reason, ``usage`` and ``routing``). The routing object lists
every attempt with its judge score and cost, and ``cascade`` says the threshold, the budget and whether
the kept answer was accepted; ``cost_usd`` (and ``x-routeyard-cost-usd``) is the sum over the attempts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.responses import Response

from routeyard.gateway.backends.backend import Backend, Reply
from routeyard.gateway.explanation import SSE_DONE, routing_headers, routing_object, sse
from routeyard.gateway.outcome import Outcome, log_outcome
from routeyard.gateway.router import Decision
from routeyard.gateway.routers.cascade import CascadeRouter, CascadeWalk
from routeyard.gateway.usage import Attempt, UsageLog
from routeyard.gateway.wire import ChatCompletionRequest, RoutingOptions
from routeyard.predictor.embedder import embedding_text


async def serve_cascade(
    request: ChatCompletionRequest,
    backends: dict[str, Backend],
    router: CascadeRouter,
    decision: Decision,
    outcome: Outcome,
    usage_log: UsageLog,
) -> Response:
    """The HTTP response for ``request`` walked through ``router``; raises GatewayError when no
    backend answered, or the first to answer rejected the request."""

    async def call(backend: str) -> Reply:
        return await backends[backend].complete(request.upstream_body(backend))

    budget = router.budget_for(request.routing or RoutingOptions())
    walk = await router.walk(decision, embedding_text(request.prompt_turns()), call, budget)
    _note_attempts(walk, outcome)
    kept = walk.kept
    if kept is None or kept.reply is None:
        error = walk.rejection or outcome.exhausted()
        log_outcome(usage_log, request, decision, outcome, status=error.status, streamed=request.stream)
        raise error
    reply = kept.reply
    body = {**reply.body, "model": kept.backend}
    body.setdefault("usage", reply.usage.as_json())
    cascade = {
        "threshold": router.threshold,
        "budget_usd": walk.budget_usd if math.isfinite(walk.budget_usd) else None,
        "accepted": walk.accepted,
        "escalations": sum(s.reply is not None for s in walk.steps) - 1,  # failovers are not escalations
    }
    body["routing"] = routing_object(
        decision, kept.backend, walk.cost_usd, reply.usage, outcome, cascade=cascade
    )
    headers = routing_headers(decision, kept.backend, outcome.request_id, walk.cost_usd)
    log_outcome(
        usage_log,
        request,
        decision,
        outcome,
        status=200,
        backend=kept.backend,
        usage=reply.usage,
        streamed=request.stream,
    )
    if request.stream:
        return StreamingResponse(_as_stream(body), media_type="text/event-stream", headers=headers)
    return JSONResponse(body, headers=headers)


def _note_attempts(walk: CascadeWalk, outcome: Outcome) -> None:
    """Each call as an attempt; a paid grading as one more, status ``judge``, charged to its grader."""
    for step in walk.steps:
        if step.error is not None:
            outcome.failed(step.backend, step.error, step.seconds)
        elif step.reply is not None and step.judgement is not None:
            judgement = step.judgement
            outcome.attempts.append(
                Attempt(
                    step.backend, "ok", step.reply.cost_usd, step.seconds, judgement.score, judgement.reason
                )
            )
            if judgement.grader is not None:
                outcome.attempts.append(
                    Attempt(judgement.grader, "judge", judgement.cost_usd, step.judge_seconds)
                )


def _as_stream(body: dict[str, Any]) -> Iterator[str]:
    """A whole completion as OpenAI chunks: each choice's message, then the finish with usage and routing."""
    base = {"id": body.get("id"), "object": "chat.completion.chunk", "created": body.get("created", 0)}
    base["model"] = body["model"]
    choices = [c for c in body.get("choices", []) if isinstance(c, dict)]
    for choice in choices:
        yield sse({**base, "choices": [{"index": choice.get("index", 0), "delta": _delta(choice)}]})
    finish = [
        {"index": c.get("index", 0), "delta": {}, "finish_reason": c.get("finish_reason")} for c in choices
    ]
    yield sse({**base, "choices": finish, "usage": body.get("usage"), "routing": body["routing"]})
    yield SSE_DONE


def _delta(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice.get("message") or {}
    delta = {key: message[key] for key in ("role", "content", "refusal") if message.get(key) is not None}
    delta.setdefault("role", "assistant")
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(message["tool_calls"])]
    return delta
