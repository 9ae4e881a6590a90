"""A small OpenAI-compatible upstream for tests and load benchmarks, controllable to fail.

The upstream model id in a request chooses the behaviour:

================  =================================================================================
``echo``          answers ``echo: <last message>``, with usage (the default for any other id)
``no-usage``      answers like ``echo`` but reports no usage
``fail-500``      HTTP 500 every time
``flaky-N``       HTTP 503 on the first N calls of that id, then like ``echo``
``rate-limit``    HTTP 429 every time
``bad-request``   HTTP 400 every time
``status-N``      HTTP N every time, with an OpenAI error body (``status-401``, ``status-404``, …)
``hang``          waits 30 s before answering (longer than any test's timeout)
``trickle:S``     HTTP 200, then a body that never completes: ``{"choices": [`` then a space every S
                  seconds (a stream: two chunks, then a line growing by a space every S seconds),
                  for :data:`TRICKLE_SECONDS` at most
``flood``         HTTP 200, then a body that never completes, sent as fast as the client reads:
                  ``{"choices": [`` then spaces (a stream: ``data:`` then spaces, one endless line),
                  :data:`FLOOD_BYTES` at most
``big:N``         answers ``N`` times ``x`` (one word: a stream sends it as one chunk, one line)
``garbage``       HTTP 200 with a body that is not JSON
``cut``           streams two chunks, then drops the connection without ``[DONE]``
``says:TEXT``     answers ``TEXT`` (a fixed answer, for cascades and judges)
``meet:KEY:TEXT``  answers ``TEXT`` once another call of a ``meet:KEY:…`` id is in flight at the same
                  time (calls meet in pairs); HTTP 504 when none comes within :data:`MEET_SECONDS`: a
                  pair of calls made one after the other fails
``grader``        answers ``GRADE: 9`` when the last message contains ``[good]``, else ``GRADE: 2``
``usage:JSON``    answers like ``echo`` with ``usage`` set to the JSON text as given (even ``Infinity``)
``reply:JSON``    a whole call gets HTTP 200 with the JSON text as its body (a stream: like ``echo``)
``chunk:JSON``    a stream whose first chunk is the JSON text as given, then like ``echo``
``late-chunk:JSON``  a stream like ``echo`` with the JSON text as a chunk before the finishing one
``tool-call``     with ``tools`` and a last message that is not a tool result: calls the first tool with
                  the arguments ``{"text": <last message>}`` (call id ``call_mock``, finish reason
                  ``tool_calls``; a stream sends the arguments in two pieces); otherwise like ``echo``
================  =================================================================================

Like OpenAI, a request with ``stream_options`` that does not stream gets HTTP 400. Every answer says
what the upstream received besides the messages: a whole completion in its field ``mock_received``, a
stream in its first chunk's. With ``api_key``, the mock also checks the key like OpenAI: a request
without ``Authorization: Bearer <api_key>`` gets HTTP 401 (and is still counted).

``GET /calls`` returns how many chat completions each model id received. :func:`create_upstream_app`
builds the ASGI app; run it with :class:`~routeyard.testing.server_thread.ServerThread` (or under uvicorn
as a process, ``--factory``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

MEET_SECONDS = 5.0
"""How long a ``meet:`` call waits for its partner before it fails."""
TRICKLE_SECONDS = 30.0
"""How long a ``trickle:`` body goes on (longer than any test's deadline), if its client stays."""
FLOOD_BYTES = 256 * 1024 * 1024
"""How much a ``flood`` body sends at most (far more than any test's limit), if its client stays."""
_FLOOD_PIECE = b" " * 65536


def create_upstream_app(api_key: str | None = None) -> Starlette:
    """The mock upstream (see the module docstring); with ``api_key``, requests must carry that key."""
    calls: collections.Counter[str] = collections.Counter()
    meetings = _Meetings()

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "echo"))
        calls[model] += 1
        if api_key is not None and request.headers.get("authorization") != f"Bearer {api_key}":
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        if body.get("stream_options") is not None and not body.get("stream"):
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return _error(400, message, param="stream_options")
        if model == "fail-500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if model == "rate-limit":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if model == "bad-request":
            return JSONResponse({"error": {"message": "bad"}}, status_code=400)
        if model.startswith("status-"):
            return _error(int(model.removeprefix("status-")), "as configured")
        if model.startswith("flaky-") and calls[model] <= int(model.removeprefix("flaky-")):
            return JSONResponse({"error": {"message": "warming up"}}, status_code=503)
        if model == "hang":
            await asyncio.sleep(30)
        if model == "garbage":
            return PlainTextResponse("<html>definitely not json</html>")
        if model.startswith("trickle:") or model == "flood":
            return _endless(model, body)
        if model.startswith("meet:") and not await meetings.meet(model.split(":", 2)[1]):
            return _error(504, "no partner call arrived")
        if model == "tool-call" and _calls_a_tool(body):
            call = _tool_call(body)
            if body.get("stream"):
                return StreamingResponse(_tool_call_chunks(model, call, body), media_type="text/event-stream")
            payload = _completion(model, "")
            payload["choices"][0] = {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
            payload["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            return JSONResponse({**payload, "mock_received": _received(body)})
        answer = _answer(model, _last_text(body))
        if body.get("stream"):
            return StreamingResponse(_chunks(model, answer, body), media_type="text/event-stream")
        if model.startswith("reply:"):
            return Response(model.removeprefix("reply:"), media_type="application/json")
        payload = {**_completion(model, answer), "mock_received": _received(body)}
        if model.startswith("usage:"):
            return Response(
                _with_raw_usage(payload, model.removeprefix("usage:")), media_type="application/json"
            )
        if model != "no-usage":
            payload["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return JSONResponse(payload)

    async def count(request: Request) -> Response:
        return JSONResponse(dict(calls))

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/calls", count)])


class _Meetings:
    """Pairs up calls by key: each call waits until another of the same key arrives, or times out."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def meet(self, key: str) -> bool:
        """Whether a partner call of ``key`` arrived (or was waiting) within :data:`MEET_SECONDS`."""
        partner = self._waiting.pop(key, None)
        if partner is not None and not partner.done():
            partner.set_result(None)
            return True
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[key] = waiting
        try:
            await asyncio.wait_for(waiting, MEET_SECONDS)
        except TimeoutError:
            if self._waiting.get(key) is waiting:
                del self._waiting[key]
            return False
        return True


def _endless(model: str, body: dict[str, Any]) -> Response:
    """A ``trickle:S`` or ``flood`` answer: a 200 whose body never completes (see the module docstring)."""
    streamed = bool(body.get("stream"))
    media_type = "text/event-stream" if streamed else "application/json"
    if model == "flood":
        return StreamingResponse(_flood(b"data: " if streamed else b'{"choices": ['), media_type=media_type)
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}}]} for text in ("echo:", " trickle")]
    first = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) if streamed else '{"choices": ['
    return StreamingResponse(_trickle(first, float(model.removeprefix("trickle:"))), media_type=media_type)


async def _trickle(start: str, pause: float) -> AsyncIterator[str]:
    yield start
    ends = time.monotonic() + TRICKLE_SECONDS
    while time.monotonic() < ends:
        await asyncio.sleep(pause)
        yield " "


async def _flood(start: bytes) -> AsyncIterator[bytes]:
    yield start
    for _ in range(FLOOD_BYTES // len(_FLOOD_PIECE)):
        yield _FLOOD_PIECE


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Response:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status)


def _received(body: dict[str, Any]) -> dict[str, Any]:
    """What the mock received besides the messages (which it never echoes whole)."""
    return {key: value for key, value in body.items() if key != "messages"}


def _with_raw_usage(payload: dict[str, Any], raw_usage: str) -> str:
    """``payload`` as JSON text with ``"usage": raw_usage`` spliced in as given (maybe not even JSON)."""
    return json.dumps(payload)[:-1] + ', "usage": ' + raw_usage + "}"


def _answer(model: str, last_text: str) -> str:
    if model.startswith("says:"):
        return model.removeprefix("says:")
    if model.startswith("meet:"):
        return model.split(":", 2)[2]
    if model == "grader":
        return "GRADE: 9" if "[good]" in last_text else "GRADE: 2"
    if model.startswith("big:"):
        return "x" * int(model.removeprefix("big:"))
    return "echo: " + last_text


def _last_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    return content if isinstance(content, str) else json.dumps(content)


def _calls_a_tool(body: dict[str, Any]) -> bool:
    """Whether a ``tool-call`` request gets a tool call: it has tools, and its last message is not a tool's
    result."""
    messages = body.get("messages") or [{}]
    return bool(body.get("tools")) and messages[-1].get("role") != "tool"


def _tool_call(body: dict[str, Any]) -> dict[str, Any]:
    """The call of the request's first tool, with the last message's text as the argument ``text``."""
    name = body["tools"][0].get("function", {}).get("name", "")
    arguments = json.dumps({"text": _last_text(body)})
    return {"id": "call_mock", "type": "function", "function": {"name": name, "arguments": arguments}}


async def _tool_call_chunks(model: str, call: dict[str, Any], body: dict[str, Any]) -> AsyncIterator[str]:
    """A streamed tool call: its id and name, its arguments in two pieces, the finish, usage if asked."""
    base = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    arguments = call["function"]["arguments"]
    half = len(arguments) // 2
    opening = {
        "index": 0,
        "id": call["id"],
        "type": "function",
        "function": {"name": call["function"]["name"]},
    }
    deltas = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{**opening, "function": {**opening["function"], "arguments": ""}}],
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]},
    ]
    for i, delta in enumerate(deltas):
        received = {"mock_received": _received(body)} if i == 0 else {}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice], **received})}\n\n"
    finish = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    yield f"data: {json.dumps({**base, 'choices': [finish]})}\n\n"
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def _completion(model: str, answer: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
        ],
    }


async def _chunks(model: str, answer: str, body: dict[str, Any]) -> AsyncIterator[str]:
    base = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    if model.startswith("chunk:"):
        yield f"data: {model.removeprefix('chunk:')}\n\n"
    words = answer.split(" ")
    for i, word in enumerate(words):
        delta = {"content": word if i == 0 else " " + word}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        received = {"mock_received": _received(body)} if i == 0 else {}
        yield f"data: {json.dumps({**base, 'choices': [choice], **received})}\n\n"
        if model == "cut" and i == 1:
            raise ConnectionResetError("mock upstream cut the stream")
    if model.startswith("late-chunk:"):
        yield f"data: {model.removeprefix('late-chunk:')}\n\n"
    yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") and model != "no-usage":
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
        raw_usage = model.removeprefix("usage:") if model.startswith("usage:") else json.dumps(usage)
        yield f"data: {_with_raw_usage({**base, 'choices': []}, raw_usage)}\n\n"
    yield "data: [DONE]\n\n"
