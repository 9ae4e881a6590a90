"""``GET /metrics`` on a port of its own (``metrics_port``): a Prometheus scrape endpoint beside the API.

:func:`start_metrics_server` serves one registry, collected at each scrape, from a small threaded HTTP
server (the standard library's, with ``prometheus_client``'s exposition: text or OpenMetrics by the
``Accept`` header, gzip if asked, ``?name[]=`` filters; any path but ``/favicon.ico`` answers the
metrics, as ``prometheus_client.start_http_server`` does). It needs no key, by Prometheus convention:
the metrics carry backend, router and status names, never a prompt or a key. Bind it where only the
scraper reaches; each connection holds a thread, and a socket operation that waits more than
:data:`SOCKET_TIMEOUT_SECONDS` ends it.

The gateway's app starts it in its lifespan when ``metrics_port`` is set (``routeyard.gateway.app``);
under ``routeyard serve --workers N`` worker *i* (0 … N-1) listens on ``metrics_port + i``, each with
its own registry (``routeyard.cli.serve_command``).
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

SOCKET_TIMEOUT_SECONDS = 10.0
"""How long one read or write of a metrics connection may wait before the connection is dropped."""
_POLL_SECONDS = 0.1  # how soon close() is noticed by the accepting thread

logger = logging.getLogger("routeyard.metrics")


class _QuietHandler(WSGIRequestHandler):
    """A request handler that logs no request (scrapes are frequent) and gives up on a slow client."""

    timeout = SOCKET_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingWSGIServer):
    """The threaded WSGI server, reporting a dropped connection as one debug line, not a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("metrics connection from %s dropped", client_address, exc_info=True)


@dataclass
class MetricsServer:
    """A running metrics server (from :func:`start_metrics_server`): where it listens, and ``close()``."""

    host: str
    port: int
    _server: _Server
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop accepting and release the port; returns within about 0.1 s (scrapes in flight may finish in
        their own threads). Calling it again does nothing."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def start_metrics_server(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` as Prometheus metrics on ``host:port`` (port 0: any free one, see ``.port``) from
    a daemon thread, until ``close()``. ``host`` is an IPv4 or IPv6 address or a name (its first address
    is bound). Raises OSError when the address cannot be bound (e.g. the port is taken)."""
    family, address = _bind_address(host, port)
    server_class = type("_MetricsServer", (_Server,), {"address_family": family})
    server: _Server = make_server(address, port, make_wsgi_app(registry), server_class, _QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, args=(_POLL_SECONDS,), name="metrics-server", daemon=True
    )
    thread.start()
    return MetricsServer(host, int(server.server_address[1]), server, thread)


def _bind_address(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """The address family and address to bind for ``host`` (a name resolves to its first address)."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, str(sockaddr[0])
