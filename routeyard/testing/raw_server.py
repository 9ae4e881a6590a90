"""A raw TCP upstream for tests that answers bytes of the test's choosing, HTTP or not.

:class:`RawServer` stands for an upstream that breaks the protocol: a reply that is not HTTP, a broken
body, one sent in slow pieces, or none at all.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time


class RawServer:
    """A TCP server on 127.0.0.1 that reads each HTTP request and answers with ``parts``, bytes of the
    test's choosing (``pause`` seconds apart), then closes the connection; a context manager like
    :class:`~routeyard.testing.server_thread.ServerThread`. ``RawServer(b"\\x00junk")`` is an upstream
    that does not speak HTTP. With ``hold``, it keeps each connection open after its parts until the
    server stops: ``RawServer(hold=True)`` is an upstream that accepts requests and never answers."""

    def __init__(self, *parts: bytes, pause: float = 0.2, hold: bool = False) -> None:
        self._parts, self._pause, self._hold = parts, pause, hold
        self.connections = 0  # how many requests it read
        self._counting = threading.Lock()
        self._stopping = threading.Event()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        raw = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                connection: socket.socket = self.request
                connection.settimeout(5.0)
                try:
                    _read_request(connection)
                    with raw._counting:
                        raw.connections += 1
                    for i, part in enumerate(raw._parts):
                        if i:
                            time.sleep(raw._pause)
                        connection.sendall(part)
                    if raw._hold:
                        raw._stopping.wait()
                    connection.shutdown(socket.SHUT_WR)
                except OSError:  # the client gave up first
                    pass

        return Handler

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _read_request(connection: socket.socket) -> None:
    """Read one HTTP request with a ``content-length`` body (so that closing sends FIN, not RST)."""
    data = b""
    while b"\r\n\r\n" not in data:
        received = connection.recv(65536)
        if not received:
            return
        data += received
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        received = connection.recv(65536)
        if not received:
            return
        body += received
