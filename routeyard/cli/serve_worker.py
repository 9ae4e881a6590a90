"""One worker of ``routeyard serve``: the gateway under uvicorn, built from the settings file ``serve`` chose.

``serve --workers N`` (N > 1) starts N of these as ``python -m routeyard.cli.serve_worker`` under
:class:`routeyard.cli.worker_supervisor.WorkerSupervisor`; each serves the socket the supervisor bound.
Run as a module, a worker imports what serving needs and no other command (the ``routeyard`` script
imports them all), and builds its app before its event loop starts.
"""

from __future__ import annotations

import logging
import os

import uvicorn
from fastapi import FastAPI

from routeyard.cli.worker_supervisor import inherited_listener, stop_with_supervisor
from routeyard.gateway.app import create_app
from routeyard.gateway.settings import load_settings

CONFIG_VARIABLE = "ROUTEYARD_CONFIG_FILE"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_DRAIN_SECONDS = 5
"""After SIGTERM, how long requests in flight may go on (uvicorn's ``timeout_graceful_shutdown``)."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""After SIGTERM, when a worker is killed: the drain, then the app's shutdown (usage log flushed)."""


def app_from_environment(*, load_before_serving: bool = False) -> FastAPI:
    """The gateway app for the settings file named in ``$ROUTEYARD_CONFIG_FILE``; ``load_before_serving``
    as :func:`routeyard.gateway.app.create_app` takes it."""
    settings = load_settings(os.environ[CONFIG_VARIABLE])
    return create_app(settings, load_before_serving=load_before_serving)


def main() -> None:
    """Serve the inherited socket until SIGTERM or SIGINT (or until the supervisor is gone)."""
    stop_with_supervisor(SHUTDOWN_GRACE_SECONDS)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # a worker accepts from the shared socket only once its routers are in: a request that reaches it
    # is then never refused with 503 "still loading" while another worker could have answered it
    app = app_from_environment(load_before_serving=True)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=REQUEST_DRAIN_SECONDS
    )
    uvicorn.Server(config).run(sockets=[inherited_listener()])


if __name__ == "__main__":
    main()
