"""The hardened protocol (``routeyard.gateway.http_protocol``) against raw sockets, on a real gateway:
bytes the HTTP parser refuses get an OpenAI-shaped 400, and the header deadline holds.

A client that dribbles its request line and headers (slowloris) is answered 408 and disconnected once
the deadline passes, on its connection's first request and on a later one; a connection that sends
nothing is closed without an answer; SDK requests on the same server, and a keep-alive connection idle
for longer than the deadline, are served as before, and uvicorn's keep-alive still closes idle ones.
Both of uvicorn's HTTP parsers are covered: httptools (the one serve uses) and h11.
"""

import contextlib
import json
import select
import socket
import threading
import time

import openai
import pytest
import uvicorn

from routeyard.gateway.app import create_app
from routeyard.gateway.http_protocol import hardened_protocol
from routeyard.gateway.settings import load_settings
from routeyard.testing.server_thread import free_port

DEADLINE = 1.0  # seconds the headers may take
KEEP_ALIVE = 4.0  # uvicorn's timeout_keep_alive in these tests (its default is 5)
SLACK = 10.0  # a loaded 2-core machine may fire a timer late; never early
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n"


@pytest.fixture(scope="module", params=["httptools", "h11"])
def server(request, upstream):
    """A gateway (one echo backend) under uvicorn with the header deadline; its host and port."""
    backend = {"name": "echo", "base_url": upstream.url + "/v1", "model": "echo"}
    app = create_app(load_settings(backends=[backend]))
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http=hardened_protocol(DEADLINE, request.param),
        timeout_keep_alive=int(KEEP_ALIVE),
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the gateway did not start"
        time.sleep(0.01)
    yield "127.0.0.1", port
    running.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    "refused",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: g\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
        b"GET /healthz HTTP/1.1\r\nHost: g\r\nbad header line\r\n\r\n",
    ],
)
def test_bytes_the_parser_refuses_get_an_openai_shaped_400_and_the_server_goes_on(server, refused):
    with socket.create_connection(server) as connection:
        connection.sendall(refused)
        answer = _read_until_closed(connection, SLACK)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "invalid_http"
    with socket.create_connection(server) as connection:
        connection.sendall(REQUEST)
        assert _read_response(connection).startswith(b"HTTP/1.1 200")


def test_headers_over_the_cap_get_an_openai_shaped_431_and_the_server_goes_on(server, request):
    with socket.create_connection(server) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered and closed before the end
            connection.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: g\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
            )
        answer = _read_until_closed(connection, SLACK)
    head, _, body = answer.partition(b"\r\n\r\n")
    if request.node.callspec.params["server"] == "h11":  # h11 refuses past its own 16 KiB first
        assert head.startswith(b"HTTP/1.1 400 ") and json.loads(body)["error"]["code"] == "invalid_http"
    else:
        assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert json.loads(body)["error"]["code"] == "headers_too_large"
    with socket.create_connection(server) as connection:
        connection.sendall(REQUEST)
        assert _read_response(connection).startswith(b"HTTP/1.1 200")


def test_a_client_sending_its_headers_slowly_gets_408_and_is_disconnected(server):
    with socket.create_connection(server) as connection:
        opened = time.monotonic()
        answer = _dribble(connection, b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        closed_after = time.monotonic() - opened
    _assert_timeout_answer(answer)
    assert DEADLINE * 0.8 <= closed_after <= DEADLINE + SLACK


def test_a_slow_second_request_on_a_keep_alive_connection_gets_408(server):
    with socket.create_connection(server) as connection:
        connection.sendall(REQUEST)
        assert _read_response(connection).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        answer = _dribble(connection, b"GET /healthz HTTP/1.1\r\nHost: gate")
        closed_after = time.monotonic() - started
    _assert_timeout_answer(answer)
    assert closed_after <= DEADLINE + SLACK


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server):
    with socket.create_connection(server) as connection:
        opened = time.monotonic()
        answer = _read_until_closed(connection, DEADLINE + SLACK)
        closed_after = time.monotonic() - opened
    assert answer == b""
    assert DEADLINE * 0.8 <= closed_after <= DEADLINE + SLACK


def test_sdk_requests_are_answered_on_the_same_server(server):
    host, port = server
    client = openai.OpenAI(base_url=f"http://{host}:{port}/v1", api_key="unused", max_retries=0)
    for i in range(5):
        reply = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": f"{i}"}])
        assert reply.choices[0].message.content == f"echo: {i}"


def test_an_idle_keep_alive_connection_outlives_the_deadline_until_uvicorns_keep_alive(server):
    with socket.create_connection(server) as connection:
        connection.sendall(REQUEST)
        assert _read_response(connection).startswith(b"HTTP/1.1 200")
        time.sleep(DEADLINE * 1.5)  # idle past the header deadline, not past the keep-alive
        connection.sendall(REQUEST)
        assert _read_response(connection).startswith(b"HTTP/1.1 200")
        idle_since = time.monotonic()
        answer = _read_until_closed(connection, KEEP_ALIVE + SLACK)
        closed_after = time.monotonic() - idle_since
    assert answer == b""  # closed by the keep-alive rule, silently: no 408
    assert KEEP_ALIVE * 0.8 <= closed_after <= KEEP_ALIVE + SLACK


def _dribble(connection: socket.socket, start: bytes) -> bytes:
    """Send ``start``, then one header byte every 0.2 s until the server answers or closes (at most
    ``DEADLINE + SLACK`` seconds); everything the server sent."""
    connection.sendall(start)
    give_up = time.monotonic() + DEADLINE + SLACK
    while time.monotonic() < give_up:
        readable, _, _ = select.select([connection], [], [], 0.2)
        if readable:
            return _read_until_closed(connection, give_up - time.monotonic())
        try:
            connection.sendall(b"a")
        except OSError:  # closed between two bytes
            return _read_until_closed(connection, 1.0)
    pytest.fail("the server neither answered nor closed a connection dribbling its headers")


def _read_until_closed(connection: socket.socket, timeout: float) -> bytes:
    """All bytes until the server closes the connection; fails the test after ``timeout`` seconds."""
    received = b""
    give_up = time.monotonic() + timeout
    while (left := give_up - time.monotonic()) > 0:
        connection.settimeout(left)
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the connection was still open after {timeout:.1f} s (received {received[:200]!r})")


def _read_response(connection: socket.socket) -> bytes:
    """One response with a content-length (head and body), from an open connection."""
    connection.settimeout(SLACK)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a whole response: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))[15:]
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, "closed before a whole response body"
        body += chunk
    return head + b"\r\n\r\n" + body


def _assert_timeout_answer(answer: bytes) -> None:
    """``answer`` is one OpenAI-shaped 408 that closes the connection."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and error["type"] == "invalid_request_error"
