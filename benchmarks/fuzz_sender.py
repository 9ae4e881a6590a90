"""How the gateway fuzzer sends a probe (``benchmarks/fuzz_probe.py``) and reads what came back.

A probe with an SDK request goes through the official openai SDK (``with_streaming_response``: the
status and the bytes of the body, a stream's too, whatever the status); a raw one as bytes on a socket;
every other through httpx. Every answer is read whole, within :data:`ANSWER_SECONDS`. Traffic goes to the
target's loopback address only.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from benchmarks.fuzz_probe import FuzzTarget, Probe

ANSWER_SECONDS = 60.0
"""How long an answer may take (the slowest fuzzed backend times out after a fraction of that)."""
LEAVE_AFTER_SECONDS = 0.3
"""How long a probe that does not wait for its answer stays connected."""
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What came back: ``status`` None when nothing did (``failure`` says why); ``headers`` with lower-case
    names (a repeated one: its last value)."""

    status: int | None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    failure: str | None = None


class Sender:
    """Sends probes to ``target``; a context manager (closes its clients)."""

    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self._http = httpx.Client(base_url=target.url, timeout=ANSWER_SECONDS)
        self._sdk = openai.OpenAI(
            base_url=target.url + "/v1",
            api_key=target.client_key or "unused",
            max_retries=0,
            timeout=ANSWER_SECONDS,
        )

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.close()
        self._sdk.close()

    def send(self, probe: Probe) -> Answer:
        """Send ``probe`` and read its answer (an Answer without status when there was none)."""
        if probe.raw is not None:
            return exchange_raw(self.target, probe.raw, wait=probe.answer_expected)
        if probe.sdk_request is not None:
            return self._send_with_sdk(dict(probe.sdk_request))
        return self._send_with_httpx(probe)

    def _send_with_sdk(self, arguments: dict[str, Any]) -> Answer:
        try:
            with self._sdk.chat.completions.with_streaming_response.create(**arguments) as response:
                return Answer(response.status_code, response.read(), _lowered(response.headers))
        except openai.APIStatusError as error:
            return Answer(error.status_code, error.response.content, _lowered(error.response.headers))
        except openai.APIConnectionError as error:
            return Answer(None, failure=f"{type(error).__name__}: {error.__cause__!r}")

    def _send_with_httpx(self, probe: Probe) -> Answer:
        content: bytes | Iterator[bytes] = _in_chunks(probe.body) if probe.chunked else probe.body
        headers = [(name.encode("latin-1"), _latin1(value)) for name, value in probe.headers]
        try:
            response = self._http.request(probe.method, probe.path, content=content, headers=headers)
        except httpx.TransportError as error:
            return Answer(None, failure=f"{type(error).__name__}: {error}")
        return Answer(response.status_code, response.content, _lowered(response.headers))


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


def _in_chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), _CHUNK):
        yield body[start : start + _CHUNK]


def exchange_raw(target: FuzzTarget, request: bytes, *, wait: bool = True) -> Answer:
    """Send ``request`` as-is on a new connection and read the first answer; with ``wait`` False, stay
    :data:`LEAVE_AFTER_SECONDS` and leave without reading (the Answer then has no status)."""
    with socket.create_connection(target.host_port, timeout=ANSWER_SECONDS) as connection:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            connection.sendall(request)
        if not wait:
            time.sleep(LEAVE_AFTER_SECONDS)
            return Answer(None, failure="left before the answer")
        return _read_answer(connection)


def _read_answer(connection: socket.socket) -> Answer:
    """The first final HTTP response on ``connection`` (an interim 1xx, such as ``100 Continue``, is
    skipped): its body is ``content-length`` bytes, else all until the server closes."""
    data, failure = _receive(connection, lambda data: _complete(_final(data)))
    head, separator, body = _final(data).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if not separator or len(parts) < 2 or not parts[1].isdigit():
        return Answer(None, data, failure=failure or f"no HTTP answer: {data[:80]!r}")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "")
    return Answer(int(parts[1]), body[: int(length)] if length.isdigit() else body, headers)


def _final(data: bytes) -> bytes:
    """``data`` without the interim (1xx) responses it starts with."""
    while data.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in data:
        data = data.partition(b"\r\n\r\n")[2]
    return data


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole response with a ``content-length``."""
    head, separator, body = data.partition(b"\r\n\r\n")
    if not separator or head.startswith(b"HTTP/1.1 1"):
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False


def _receive(connection: socket.socket, done: Callable[[bytes], bool]) -> tuple[bytes, str | None]:
    """Bytes from ``connection`` until ``done(data)``, the server closes, or it fails (then: why)."""
    data = b""
    while not done(data):
        try:
            received = connection.recv(_CHUNK)
        except OSError as error:
            return data, f"{type(error).__name__}: {error}"
        if not received:
            return data, None if data else "closed with no answer"
        data += received
    return data, None
