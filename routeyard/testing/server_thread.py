"""Any ASGI app under uvicorn on 127.0.0.1 in a daemon thread, for tests; and a free port to put a server on.

:class:`ServerThread` runs an app (the mock upstreams of :mod:`routeyard.testing.mock_upstream` and
:mod:`routeyard.testing.mock_anthropic`, or a gateway) until the ``with`` block ends; :func:`free_port`
finds a port for a server started some other way (a process, ``redis-server``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

T = TypeVar("T")


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

    def run_on_loop(self, call: Callable[[], T], timeout: float = 10.0) -> T:
        """``call()`` run on the server's event loop, where the app's own code runs (so nothing of the app
        interleaves with it), and its result; waits at most ``timeout`` seconds."""

        async def on_loop() -> T:
            return call()

        loop = self._server.servers[0].get_loop()  # the loop uvicorn's listening socket is served on
        return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(timeout)
