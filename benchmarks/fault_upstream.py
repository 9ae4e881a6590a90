"""A fault-injecting OpenAI-compatible upstream for the soak benchmark (``benchmarks/soak_gateway.py``).

Every chat completion draws one fault from a fixed mix (seeded, so a run's sequence of faults repeats):

==============  ================================================================================
``ok``          a normal answer, with usage (whole, or a stream of word chunks with a usage chunk)
``status_500``  HTTP 500 with an OpenAI error body
``status_429``  HTTP 429 with an OpenAI error body and ``retry-after: 1``
``slow``        a normal answer after :data:`SLOW_SECONDS`
``drop``        the connection closed once the request was read: no answer at all
``malformed``   HTTP 200 whose JSON is cut off (whole), or a stream chunk that is not JSON
``cut``         the body cut mid-way: half the declared bytes (whole), or two chunks of a stream, then
                the connection closed
``trickle``     a normal answer sent in pieces :data:`TRICKLE_PAUSE` seconds apart
==============  ================================================================================

It is a small HTTP/1.1 server on asyncio rather than an ASGI app so that it can do what an ASGI server
would not let an app do: close a connection without answering, or cut a body short. It keeps
connections alive (streams use chunked encoding, so a cut is a protocol error, not an end) and reads
only requests with a ``content-length`` body, which is what the gateway sends.

``GET /calls`` answers how many chat completions drew each fault (JSON); any other path is a 404.
Answers never repeat the prompt. Run it as a process::

    python -m benchmarks.fault_upstream --port 8101 [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FAULT_MIX: Mapping[str, float] = {
    "ok": 0.70,
    "status_500": 0.05,
    "status_429": 0.05,
    "slow": 0.04,
    "drop": 0.04,
    "malformed": 0.04,
    "cut": 0.04,
    "trickle": 0.04,
}
"""Each fault's probability per chat completion (they sum to 1)."""
SLOW_SECONDS = 2.0
TRICKLE_PAUSE = 0.2
TRICKLE_PIECES = 8
MAX_HEAD_BYTES = 16_384
ANSWER_WORDS = ("This", "answer", "comes", "from", "the", "fault-injecting", "upstream.")
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass(frozen=True)
class Request:
    """One HTTP request as read: method, path, lower-cased header names, body bytes."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


class FaultMix:
    """Draws fault names with the probabilities of ``mix`` from a generator seeded with ``seed``."""

    def __init__(self, mix: Mapping[str, float] = FAULT_MIX, seed: int = 0) -> None:
        self._names = list(mix)
        self._weights = [mix[name] for name in self._names]
        self._random = random.Random(seed)

    def draw(self) -> str:
        return self._random.choices(self._names, self._weights)[0]


class FaultUpstream:
    """The server's behaviour (see the module docstring); :attr:`calls` counts completions by fault."""

    def __init__(self, mix: FaultMix) -> None:
        self.mix = mix
        self.calls: collections.Counter[str] = collections.Counter({name: 0 for name in FAULT_MIX})

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection until the client closes it or a fault drops it."""
        try:
            while (request := await read_request(reader)) is not None:
                if not await self.answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the gateway left, or sent what this server does not read: drop the connection
        finally:
            writer.close()  # after what was written (half a body, for a cut) has gone out

    async def answer(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer ``request``; whether the connection may carry another one."""
        if request.method == "GET" and request.path == "/calls":
            await send_whole(writer, 200, json.dumps(dict(self.calls)).encode())
            return request.keep_alive
        if request.method != "POST" or request.path != "/v1/chat/completions":
            await send_whole(writer, 404, error_body("no such path"))
            return request.keep_alive
        body = json.loads(request.body)
        fault = self.mix.draw()
        self.calls[fault] += 1
        stream = bool(body.get("stream"))
        kept = await self._fault(fault, writer, stream, _wants_usage(body))
        return kept and request.keep_alive

    async def _fault(self, fault: str, writer: asyncio.StreamWriter, stream: bool, usage: bool) -> bool:
        """Send what ``fault`` sends; whether the connection is still usable."""
        if fault == "drop":
            writer.transport.abort()  # a reset, no answer: what a crashed upstream looks like
            return False
        if fault == "status_500":
            await send_whole(writer, 500, error_body("injected server error"))
            return True
        if fault == "status_429":
            await send_whole(writer, 429, error_body("injected rate limit"), {"retry-after": "1"})
            return True
        if fault == "slow":
            await asyncio.sleep(SLOW_SECONDS)
        pause = TRICKLE_PAUSE if fault == "trickle" else 0.0
        if stream:
            return await send_stream(writer, fault, usage, pause)
        payload = json.dumps(completion()).encode()
        if fault == "malformed":
            payload = payload[: len(payload) // 2]  # valid HTTP, a 200, JSON cut off
        if fault == "cut":
            await send_head(writer, 200, {"content-length": str(len(payload))})
            writer.write(payload[: len(payload) // 2])
            await writer.drain()
            return False
        await send_whole(writer, 200, payload, pause=pause)
        return True


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on the connection, or None once the client closed it. Raises ValueError for a
    request this server does not read (no ``content-length`` on a body, a head over 16 KB)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("request head too large")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ValueError("chunked request bodies are not read")
    length = int(headers.get("content-length", "0"))
    return Request(method, path.split("?", 1)[0], headers, await reader.readexactly(length))


async def send_head(writer: asyncio.StreamWriter, status: int, headers: Mapping[str, str]) -> None:
    """The status line and ``headers``."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{name}: {value}" for name, value in {"content-type": "application/json", **headers}.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


async def send_whole(
    writer: asyncio.StreamWriter,
    status: int,
    payload: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    pause: float = 0.0,
) -> None:
    """A whole response: ``payload`` with its length; with ``pause``, in :data:`TRICKLE_PIECES` pieces
    ``pause`` seconds apart."""
    await send_head(writer, status, {**(headers or {}), "content-length": str(len(payload))})
    pieces = TRICKLE_PIECES if pause else 1
    step = -(-len(payload) // pieces)
    for start in range(0, len(payload), step):
        if start and pause:
            await asyncio.sleep(pause)
        writer.write(payload[start : start + step])
        await writer.drain()


async def send_stream(writer: asyncio.StreamWriter, fault: str, usage: bool, pause: float) -> bool:
    """A streamed answer in chunked encoding, as ``fault`` shapes it (``ok``, ``slow``, ``trickle``:
    whole; ``malformed``: one chunk is not JSON; ``cut``: two chunks, then nothing); whether the
    connection is still usable."""
    await send_head(writer, 200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"})
    for i, event in enumerate(stream_events(usage)):
        if fault == "cut" and i == 2:
            return False
        if fault == "malformed" and i == 1:
            event = "data: {not json\n\n"
        if i and pause:
            await asyncio.sleep(pause)
        data = event.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


def stream_events(usage: bool) -> list[str]:
    """The SSE events of a normal streamed answer: one per word, the finishing one, the usage one when
    asked for, ``[DONE]``."""
    base = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = "fault-upstream"
    events = []
    for i, word in enumerate(ANSWER_WORDS):
        choice = {"index": 0, "delta": {"content": word if i == 0 else " " + word}, "finish_reason": None}
        events.append({**base, "choices": [choice]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        events.append({**base, "choices": [], "usage": _usage()})
    return [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]


def completion() -> dict[str, Any]:
    """A normal whole answer, with usage."""
    message = {"role": "assistant", "content": " ".join(ANSWER_WORDS)}
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fault-upstream",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage(),
    }


def error_body(message: str) -> bytes:
    """An OpenAI error body."""
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return json.dumps({"error": error}).encode()


def _usage() -> dict[str, int]:
    return {
        "prompt_tokens": 40,
        "completion_tokens": len(ANSWER_WORDS),
        "total_tokens": 40 + len(ANSWER_WORDS),
    }


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


async def serve(port: int, seed: int) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled."""
    upstream = FaultUpstream(FaultMix(seed=seed))
    server = await asyncio.start_server(upstream.serve_connection, "127.0.0.1", port, limit=1 << 20)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seeds the sequence of faults")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
