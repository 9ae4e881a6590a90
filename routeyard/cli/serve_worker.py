"""One worker of ``routeyard serve``: the gateway under uvicorn, built from the settings file ``serve`` chose.

``serve --workers N`` (N > 1) starts N of these as ``python -m routeyard.cli.serve_worker`` under
:class:`routeyard.cli.worker_supervisor.WorkerSupervisor`; each serves the socket the supervisor bound.
Run as a module, a worker imports what serving needs and no other command (the ``routeyard`` script
imports them all), and builds its app before its event loop starts.

What ``serve`` decided reaches a worker through its environment: the settings file
(:data:`CONFIG_VARIABLE`; ``ROUTEYARD_METRICS_HOST`` too when serve filled it in), whether it serves
without client keys on a non-loopback address (:data:`UNAUTHENTICATED_HOST_VARIABLE`: the worker warns
at each start), and its slot (``worker_index``: its metrics listen on ``metrics_port`` + slot). Both
``serve`` in one process and a worker run uvicorn with :func:`uvicorn_options`: the settings' header
deadline (``routeyard.gateway.http_protocol``), no access log, a bounded drain.

SIGHUP reloads the routers from the settings file, gated by replay, as ``POST /admin/reload`` does
(``routeyard.gateway.policy_reload``); the verdict is logged. :func:`app_from_environment` installs that
handler when it runs in the main thread (a worker, and ``serve`` in one process).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from routeyard.cli.worker_supervisor import inherited_listener, stop_with_supervisor, worker_index
from routeyard.gateway.app import create_app
from routeyard.gateway.http_protocol import hardened_protocol
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import GatewaySettings, load_settings

CONFIG_VARIABLE = "ROUTEYARD_CONFIG_FILE"
UNAUTHENTICATED_HOST_VARIABLE = "ROUTEYARD_SERVE_UNAUTHENTICATED_HOST"
"""Set by ``serve --insecure-no-auth`` to the non-loopback host it serves without client keys."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_DRAIN_SECONDS = 5
"""After SIGTERM, how long requests in flight may go on (uvicorn's ``timeout_graceful_shutdown``)."""
SHUTDOWN_GRACE_SECONDS = 10.0
"""After SIGTERM, when a worker is killed: the drain, then the app's shutdown (usage log flushed)."""

logger = logging.getLogger("routeyard.serve")


def settings_from_environment() -> GatewaySettings:
    """The settings of the file named in ``$ROUTEYARD_CONFIG_FILE``, as this worker runs them: worker slot
    *i* (``worker_index``, 0 outside a supervisor) has its metrics on ``metrics_port + i``."""
    settings = load_settings(os.environ[CONFIG_VARIABLE])
    slot = worker_index()
    if settings.metrics_port is None or not slot:
        return settings
    return settings.model_copy(update={"metrics_port": settings.metrics_port + slot})


def app_from_environment(
    settings: GatewaySettings | None = None, *, load_before_serving: bool = False
) -> FastAPI:
    """The gateway app for ``settings`` (default: :func:`settings_from_environment`); ``load_before_serving``
    as :func:`routeyard.gateway.app.create_app` takes it. It reloads from ``$ROUTEYARD_CONFIG_FILE``
    (``POST /admin/reload``), and on SIGHUP when built in the main thread (:func:`reload_on_hangup`)."""
    app = create_app(
        settings or settings_from_environment(),
        load_before_serving=load_before_serving,
        config_path=Path(os.environ[CONFIG_VARIABLE]) if os.environ.get(CONFIG_VARIABLE) else None,
    )
    if threading.current_thread() is threading.main_thread():
        reload_on_hangup(app)
    return app


def reload_on_hangup(app: FastAPI) -> None:
    """From now on SIGHUP reloads ``app``'s routers (gated by replay; the verdict is logged) instead of
    ending the process. Call it from the main thread."""
    reloader = runtime_of(app).reloader
    if reloader is None:
        return

    def on_hangup(signum: int, frame: object) -> None:
        reloader.reload_soon()  # no logging here: a signal handler must not take the logging lock

    signal.signal(signal.SIGHUP, on_hangup)


def uvicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    """The uvicorn options ``serve`` runs every worker with (besides the app and where to listen)."""
    return {
        "http": hardened_protocol(settings.header_timeout_seconds),
        "log_level": "warning",
        "access_log": False,  # the usage log records every request
        "timeout_graceful_shutdown": REQUEST_DRAIN_SECONDS,
    }


def warn_unauthenticated(host: str) -> None:
    """Say loudly, on stderr and in the log at WARNING, that anyone reaching ``host`` may use the API."""
    message = (
        f"serving WITHOUT client keys on {host}, which is not a loopback address "
        "(--insecure-no-auth): anyone who reaches this port can send requests on your upstream keys"
    )
    rule = "!" * 100
    print(f"{rule}\nrouteyard: WARNING: {message}\n{rule}", file=sys.stderr, flush=True)
    logger.warning(message)


def main() -> None:
    """Serve the inherited socket until SIGTERM or SIGINT (or until the supervisor is gone)."""
    stop_with_supervisor(SHUTDOWN_GRACE_SECONDS)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    unauthenticated_host = os.environ.get(UNAUTHENTICATED_HOST_VARIABLE)
    if unauthenticated_host:
        warn_unauthenticated(unauthenticated_host)
    settings = settings_from_environment()
    # a worker accepts from the shared socket only once its routers are in: a request that reaches it
    # is then never refused with 503 "still loading" while another worker could have answered it
    app = app_from_environment(settings, load_before_serving=True)
    config = uvicorn.Config(app, **uvicorn_options(settings))
    uvicorn.Server(config).run(sockets=[inherited_listener()])


if __name__ == "__main__":
    main()
