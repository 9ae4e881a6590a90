"""A small OpenAI-compatible upstream for tests and load benchmarks, controllable to fail.

The upstream model id in a request chooses the behaviour:

=============  ====================================================================================
``echo``       answers ``echo: <last message>``, with usage (the default for any other id)
``no-usage``   answers like ``echo`` but reports no usage
``fail-500``   HTTP 500 every time
``flaky-N``    HTTP 503 on the first N calls of that id, then like ``echo``
``rate-limit`` HTTP 429 every time
``bad-request`` HTTP 400 every time
``hang``       waits 30 s before answering (longer than any test's timeout)
``garbage``    HTTP 200 with a body that is not JSON
``cut``        streams two chunks, then drops the connection without ``[DONE]``
``says:TEXT``  answers ``TEXT`` (a fixed answer, for cascades and judges)
``grader``     answers ``GRADE: 9`` when the last message contains ``[good]``, else ``GRADE: 2``
=============  ====================================================================================

``GET /calls`` returns how many chat completions each model id received. :func:`create_upstream_app`
builds the ASGI app; :class:`ServerThread` runs any ASGI app under uvicorn on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


def create_upstream_app() -> Starlette:
    """The mock upstream (see the module docstring)."""
    calls: collections.Counter[str] = collections.Counter()

    async def chat(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "echo"))
        calls[model] += 1
        if model == "fail-500":
            return JSONResponse({"error": {"message": "boom"}}, status_code=500)
        if model == "rate-limit":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        if model == "bad-request":
            return JSONResponse({"error": {"message": "bad"}}, status_code=400)
        if model.startswith("flaky-") and calls[model] <= int(model.removeprefix("flaky-")):
            return JSONResponse({"error": {"message": "warming up"}}, status_code=503)
        if model == "hang":
            await asyncio.sleep(30)
        if model == "garbage":
            return PlainTextResponse("<html>definitely not json</html>")
        answer = _answer(model, _last_text(body))
        if body.get("stream"):
            return StreamingResponse(_chunks(model, answer, body), media_type="text/event-stream")
        payload = _completion(model, answer)
        if model != "no-usage":
            payload["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return JSONResponse(payload)

    async def count(request: Request) -> Response:
        return JSONResponse(dict(calls))

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/calls", count)])


def _answer(model: str, last_text: str) -> str:
    if model.startswith("says:"):
        return model.removeprefix("says:")
    if model == "grader":
        return "GRADE: 9" if "[good]" in last_text else "GRADE: 2"
    return "echo: " + last_text


def _last_text(body: dict[str, Any]) -> str:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    return content if isinstance(content, str) else json.dumps(content)


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
    words = answer.split(" ")
    for i, word in enumerate(words):
        delta = {"content": word if i == 0 else " " + word}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        if model == "cut" and i == 1:
            raise ConnectionResetError("mock upstream cut the stream")
    yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage") and model != "no-usage":
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10 + len(words)}
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerThread:
    """Runs an ASGI app under uvicorn on 127.0.0.1 in a daemon thread; a context manager.

    ``with ServerThread(app) as server: server.url`` — entering waits until uvicorn has started (and
    the app's lifespan start-up ran); leaving stops it.
    """

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30.0
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)
