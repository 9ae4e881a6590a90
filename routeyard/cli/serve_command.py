"""``routeyard serve``: run the gateway under uvicorn, on a config file or the embedded default.

One worker runs in this process (``uvicorn.run``); ``--workers N`` binds the socket here and runs N
``routeyard.cli.serve_worker`` processes under :class:`~routeyard.cli.worker_supervisor.WorkerSupervisor`,
which starts and stops them in bounded time also on a busy machine (uvicorn's own ``--workers`` does not).

Safe to expose:

- ``--host`` other than a loopback address (127.0.0.0/8, ``::1``, ``localhost``; ``0.0.0.0`` and ``::``
  are not) is refused (exit 2) unless the settings authenticate clients (``client_keys_env`` or
  ``virtual_keys``), or ``--insecure-no-auth`` is given: then serve, and every worker, warns loudly on
  stderr and in the log at each start;
- a request's line and headers must arrive within ``header_timeout_seconds`` (slowloris), by the protocol
  of ``routeyard.gateway.http_protocol``;
- with ``metrics_port``, ``/metrics`` is served on that port (``routeyard.gateway.metrics_server``), at
  ``metrics_host`` or else ``--host`` (serve sets ``ROUTEYARD_METRICS_HOST`` for the app); under
  ``--workers N`` worker slot *i* listens on ``metrics_port + i``, each with its own counters, so
  Prometheus scrapes all N ports (the ports are printed at start).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

import uvicorn

from routeyard.cli.embedders import cache_dir
from routeyard.cli.serve_worker import (
    CONFIG_VARIABLE,
    LOG_FORMAT,
    SHUTDOWN_GRACE_SECONDS,
    UNAUTHENTICATED_HOST_VARIABLE,
    app_from_environment,
    settings_from_environment,
    uvicorn_options,
    warn_unauthenticated,
)
from routeyard.cli.worker_supervisor import WorkerSupervisor, bind_listener
from routeyard.demo.config import DEMO_CASCADE, DEMO_PLANS, DEMO_ROUTER, demo_config
from routeyard.gateway.settings import GatewaySettings, load_settings

# CONFIG_VARIABLE and app_from_environment: how a worker (or a test) builds the app that serve chose
__all__ = ["CONFIG_VARIABLE", "add_parser", "app_from_environment", "is_loopback", "run"]
WORKER_COMMAND = (sys.executable, "-P", "-m", "routeyard.cli.serve_worker")  # -P: not the cwd's modules
METRICS_HOST_VARIABLE = "ROUTEYARD_METRICS_HOST"  # the settings' override of metrics_host


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible routing gateway",
        description="With no --config: the embedded demo (RouterBench replay backends, KNN routing).",
    )
    parser.add_argument("--config", type=Path, help="routeyard.yaml (default: the embedded demo)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; not a loopback one: clients need keys"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each a uvicorn server")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback --host although the settings authenticate no client (anyone can use it)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check, announce and serve; raises ValueError (exit 2) for a setup that must not start."""
    if args.config is None:  # decide before building the demo, whose settings file sets no client key
        _check_exposure(args.host, load_settings(), insecure=args.insecure_no_auth)
    config = args.config or demo_config(cache_dir(), progress=sys.stderr.isatty())
    settings = load_settings(config)  # every problem listed now, not at the first request
    _check_exposure(args.host, settings, insecure=args.insecure_no_auth)
    _check_metrics_ports(settings, args.workers)
    os.environ[CONFIG_VARIABLE] = str(config)
    if settings.metrics_port is not None and settings.metrics_host is None:
        os.environ[METRICS_HOST_VARIABLE] = args.host  # the app (and each worker) reads it from there
    _announce(args, config, settings)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    os.environ.pop(UNAUTHENTICATED_HOST_VARIABLE, None)
    if not is_loopback(args.host) and not settings.authenticates_clients:
        os.environ[UNAUTHENTICATED_HOST_VARIABLE] = args.host  # each worker warns again
        warn_unauthenticated(args.host)
    return _serve(args.host, args.port, args.workers)


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches this machine only: ``localhost``, 127.0.0.0/8, ``::1`` (or it mapped to
    IPv6). Any other name, and the wildcards ``0.0.0.0`` and ``::``, are not."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _check_exposure(host: str, settings: GatewaySettings, *, insecure: bool) -> None:
    """Raise ValueError, saying how to fix it, when ``host`` is reachable from elsewhere, no client key is
    needed and ``--insecure-no-auth`` was not given."""
    if insecure or is_loopback(host) or settings.authenticates_clients:
        return
    raise ValueError(
        f"serve --host {host}: that is not a loopback address, and the settings ask clients for no key, so "
        "anyone who reaches the port could send requests on your upstream keys. Either set client_keys_env "
        "(the environment variable holding comma-separated client keys) or virtual_keys: true in the "
        "settings, or listen on 127.0.0.1, or pass --insecure-no-auth to serve without keys anyway."
    )


def _check_metrics_ports(settings: GatewaySettings, workers: int) -> None:
    """Raise ValueError when the workers' metrics ports (``metrics_port`` + 0 … N-1) pass 65535."""
    if settings.metrics_port is not None and settings.metrics_port + max(workers, 1) - 1 > 65535:
        raise ValueError(f"metrics_port {settings.metrics_port}: {workers} workers need ports beyond 65535")


def _announce(args: argparse.Namespace, config: Path, settings: GatewaySettings) -> None:
    """Print where the gateway serves, how to call it, and where its metrics are."""
    base_url = f"http://{_url_host(args.host)}:{args.port}/v1"
    model = (settings.default_router and "auto") or (settings.routers or settings.backends)[0].name
    api_key = "<a client key>" if settings.authenticates_clients else "unused"
    print(f"routeyard gateway on {base_url}  (config: {config})")
    print(
        "try it:\n"
        "  from openai import OpenAI\n"
        f'  client = OpenAI(base_url="{base_url}", api_key="{api_key}")\n'
        f'  reply = client.chat.completions.create(model="{model}", '
        'messages=[{"role": "user", "content": "Write a Python function that reverses a string."}])\n'
        '  print(reply.choices[0].message.content, reply.model_extra["routing"])'
    )
    if not args.config:
        print(
            f"models: the 11 RouterBench models by name, {DEMO_ROUTER}, {DEMO_ROUTER}-<willingness to pay>, "
            f"{DEMO_PLANS}, {DEMO_CASCADE}"
        )
    if settings.metrics_port is not None:
        host = _url_host(settings.metrics_host or args.host)
        first, last = settings.metrics_port, settings.metrics_port + max(args.workers, 1) - 1
        urls = " … ".join(dict.fromkeys(f"http://{host}:{port}/metrics" for port in (first, last)))
        each = f", worker slot i on port {first}+i (scrape them all)" if last > first else ""
        print(f"metrics (Prometheus, no key): {urls}{each}")


def _url_host(host: str) -> str:
    """``host`` as a URL writes it (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def _serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM or SIGINT: one worker in this process, or ``workers`` under a supervisor."""
    if workers <= 1:
        settings = settings_from_environment()  # with the metrics host serve filled in
        uvicorn.run(app_from_environment(settings), host=host, port=port, **uvicorn_options(settings))
        return 0
    try:
        listener = bind_listener(host, port)
    except OSError as exc:
        print(f"routeyard: error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    with listener:
        return WorkerSupervisor(WORKER_COMMAND, listener, workers, grace_seconds=SHUTDOWN_GRACE_SECONDS).run()
