"""The gateway's other API dialects: ``POST /v1/messages`` (Anthropic's Messages API) and
``POST /v1/responses`` (OpenAI's Responses API, stateless subset).

Each door is a chat completion in another dialect. Its body is translated to a chat-completion request
(``routeyard.gateway.anthropic_messages``, ``routeyard.gateway.responses_api``) and served by the same
lifecycle as ``/v1/chat/completions`` (``routeyard.gateway.request_lifecycle.serve_completion``): the
same authentication, body limit and deadline, ``model`` resolved to a backend or a router the same way,
the same key limits, usage log and exploration. The reply is translated back: a whole completion into
the dialect's object, a stream event by event as it is relayed, keeping the ``x-routeyard-*`` headers
and the ``routing`` object (a field of the Message or Response; in a stream, of the Messages
``message_delta`` event or the Responses ``response.completed`` one). An error keeps its status and
headers; its body is Anthropic's error shape on ``/v1/messages`` and OpenAI's on ``/v1/responses``.

``/v1/messages`` also takes the client key as ``x-api-key`` (what Anthropic's SDK sends) and ignores
``anthropic-version``. A Responses feature that needs state (``previous_response_id``, ``store: true``,
…) is a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from routeyard.gateway.anthropic_messages.errors import anthropic_error_body
from routeyard.gateway.anthropic_messages.front_door_reply import message_from_completion
from routeyard.gateway.anthropic_messages.front_door_request import chat_request_from_messages
from routeyard.gateway.anthropic_messages.front_door_stream import MessageStreamTranslator
from routeyard.gateway.errors import GatewayError, InvalidRequestError
from routeyard.gateway.fast_json import FastJSONResponse, loads
from routeyard.gateway.request_lifecycle import serve_completion
from routeyard.gateway.request_parsing import chat_request, json_object, require_json
from routeyard.gateway.request_trace import RequestTrace, log_refusal
from routeyard.gateway.responses_api.reply import response_from_completion
from routeyard.gateway.responses_api.request import chat_request_from_responses
from routeyard.gateway.responses_api.stream import ResponseStreamTranslator
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.sse import sse
from routeyard.gateway.wire import ChatCompletionRequest, read_body

logger = logging.getLogger("routeyard.gateway")
_PARSE_ON_LOOP_BYTES = 64 * 1024  # as for chat completions: a larger body is parsed on a worker thread
_NOT_FORWARDED = frozenset({"content-length", "content-type"})  # set again by the translated response


@dataclass(frozen=True)
class FrontDoor:
    """One dialect over chat completions.

    ``chat_request`` translates a request body (parsed JSON) to a chat-completion body, raising an
    ``InvalidRequestError`` naming the field; ``whole`` turns a completion and the dialect's request into
    the dialect's reply; ``stream`` makes, for the dialect's request, the function that turns one
    gateway SSE event (``data: …``) into the dialect's rendered events; ``error_body`` is an error's body
    in the dialect; ``messages_param`` names the field whose turns count against ``max_messages``;
    ``x_api_key`` lets the client key come as ``x-api-key``."""

    chat_request: Callable[[Any], dict[str, Any]]
    whole: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    stream: Callable[[dict[str, Any]], Callable[[str], bytes]]
    error_body: Callable[[GatewayError], dict[str, Any]]
    messages_param: str
    x_api_key: bool = False


def _message_stream(body: dict[str, Any]) -> Callable[[str], bytes]:
    stops = body.get("stop_sequences") or ()
    return MessageStreamTranslator(model=str(body.get("model", "")), stop_sequences=stops).translate_sse


MESSAGES = FrontDoor(
    chat_request=chat_request_from_messages,
    whole=lambda completion, body: message_from_completion(
        completion, stop_sequences=body.get("stop_sequences") or ()
    ),
    stream=_message_stream,
    error_body=lambda error: anthropic_error_body(error.status, error.body()),
    messages_param="messages",
    x_api_key=True,
)
"""``POST /v1/messages``: Anthropic's Messages API."""

RESPONSES = FrontDoor(
    chat_request=chat_request_from_responses,
    whole=response_from_completion,
    stream=lambda body: ResponseStreamTranslator(body).translate_sse,
    error_body=lambda error: error.body(),
    messages_param="input",
)
"""``POST /v1/responses``: OpenAI's Responses API, stateless subset."""


def add_front_door_routes(app: FastAPI, runtime: GatewayRuntime) -> None:
    """Add ``POST /v1/messages`` and ``POST /v1/responses`` (see the module docstring) to ``app``."""

    async def messages(request: Request) -> Response:
        return await serve_front_door(MESSAGES, request, runtime)

    async def responses(request: Request) -> Response:
        return await serve_front_door(RESPONSES, request, runtime)

    app.router.add_route("/v1/messages", messages, methods=["POST"])
    app.router.add_route("/v1/responses", responses, methods=["POST"])


async def serve_front_door(door: FrontDoor, request: Request, runtime: GatewayRuntime) -> Response:
    """``request`` to ``door`` served as a chat completion, its reply or error in the door's dialect.
    The checks and their order are those of ``/v1/chat/completions``; a refusal is counted the same way."""
    settings = runtime.settings
    trace = RequestTrace(
        runtime.request_ids.new(None), time.perf_counter(), keep_prompt=settings.store_prompts
    )
    try:
        caller = await runtime.authenticator.client(request.headers, x_api_key=door.x_api_key)
        if caller.client is not None:
            trace.client, trace.request_id = caller.client, runtime.request_ids.new(caller.client)
        require_json(request)
        raw = await read_body(request, settings.max_body_bytes, timeout=settings.body_timeout_seconds)
        body, chat = await _parse(door, raw, settings.max_messages)
        response = await serve_completion(chat, runtime, trace, caller.key)
        return _translated(door, body, response)
    except GatewayError as exc:
        if not trace.logged:  # refused before any backend was called: counted here
            log_refusal(runtime.refusals, trace, exc.status)
        return FastJSONResponse(door.error_body(exc), status_code=exc.status, headers=exc.response_headers())


async def _parse(
    door: FrontDoor, raw: bytes, max_messages: int
) -> tuple[dict[str, Any], ChatCompletionRequest]:
    """The door's request body and the chat completion it translates to, parsed on a worker thread when
    the body is large; raises InvalidRequestError (400) as the chat route's parsing does."""
    if len(raw) > _PARSE_ON_LOOP_BYTES:
        body, chat = await asyncio.to_thread(_parse_now, door, raw)
    else:
        body, chat = _parse_now(door, raw)
    if len(chat.messages) > max_messages:
        raise InvalidRequestError(
            f"{door.messages_param}: more than {max_messages} messages", param=door.messages_param
        )
    return body, chat


def _parse_now(door: FrontDoor, raw: bytes) -> tuple[dict[str, Any], ChatCompletionRequest]:
    body = json_object(raw)
    return body, chat_request(door.chat_request(body))


def _translated(door: FrontDoor, body: dict[str, Any], response: Response) -> Response:
    """The lifecycle's ``response`` (a whole completion or an SSE stream of chunks) in the door's dialect,
    with the same status and routing headers. Raises UpstreamError when a whole completion cannot be
    translated (a tool call's arguments that are not JSON)."""
    headers = {k: v for k, v in response.headers.items() if k not in _NOT_FORWARDED}
    if isinstance(response, StreamingResponse):
        events = _translated_events(response.body_iterator, door.stream(body))
        return StreamingResponse(
            events, status_code=response.status_code, headers=headers, media_type="text/event-stream"
        )
    reply = door.whole(loads(bytes(response.body)), body)
    return FastJSONResponse(reply, status_code=response.status_code, headers=headers)


async def _translated_events(
    events: AsyncIterable[str | bytes | memoryview], translate: Callable[[str], bytes]
) -> AsyncIterator[bytes]:
    """The gateway's SSE ``events`` (one event per item, ``[DONE]`` last) translated as they come. A
    failure to translate ends the stream with the dialect's error event; the relay is closed when this
    stream ends or is abandoned, so it logs the request as it would on the chat route."""
    try:
        async for event in events:
            translated = translate(event if isinstance(event, str) else bytes(event).decode())
            if translated:
                yield translated
    except Exception as exc:  # a bug must not leave the client waiting: end the stream with an error
        logger.error("translating a stream failed (%s)", type(exc).__name__)
        yield translate(sse(GatewayError("internal error").body()))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
