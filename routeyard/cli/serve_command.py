"""``routeyard serve``: run the gateway under uvicorn, on a config file or the embedded default.

One worker runs in this process (``uvicorn.run``); ``--workers N`` binds the socket here and runs N
``routeyard.cli.serve_worker`` processes under :class:`~routeyard.cli.worker_supervisor.WorkerSupervisor`,
which starts and stops them in bounded time also on a busy machine (uvicorn's own ``--workers`` does not).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from routeyard.cli.embedders import cache_dir
from routeyard.cli.serve_worker import (
    CONFIG_VARIABLE,
    LOG_FORMAT,
    REQUEST_DRAIN_SECONDS,
    SHUTDOWN_GRACE_SECONDS,
    app_from_environment,
)
from routeyard.cli.worker_supervisor import WorkerSupervisor, bind_listener
from routeyard.demo.config import DEMO_CASCADE, DEMO_PLANS, DEMO_ROUTER, demo_config
from routeyard.gateway.settings import load_settings

# CONFIG_VARIABLE and app_from_environment: how a worker (or a test) builds the app that serve chose
__all__ = ["CONFIG_VARIABLE", "add_parser", "app_from_environment", "run"]
WORKER_COMMAND = (sys.executable, "-P", "-m", "routeyard.cli.serve_worker")  # -P: not the cwd's modules


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible routing gateway",
        description="With no --config: the embedded demo (RouterBench replay backends, KNN routing).",
    )
    parser.add_argument("--config", type=Path, help="routeyard.yaml (default: the embedded demo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each a uvicorn server")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = args.config or demo_config(cache_dir(), progress=sys.stderr.isatty())
    settings = load_settings(config)  # every problem listed now, not at the first request
    os.environ[CONFIG_VARIABLE] = str(config)
    base_url = f"http://{args.host}:{args.port}/v1"
    model = (settings.default_router and "auto") or (settings.routers or settings.backends)[0].name
    print(f"routeyard gateway on {base_url}  (config: {config})")
    print(
        "try it:\n"
        "  from openai import OpenAI\n"
        f'  client = OpenAI(base_url="{base_url}", api_key="unused")\n'
        f'  reply = client.chat.completions.create(model="{model}", '
        'messages=[{"role": "user", "content": "Write a Python function that reverses a string."}])\n'
        '  print(reply.choices[0].message.content, reply.model_extra["routing"])'
    )
    if not args.config:
        print(
            f"models: the 11 RouterBench models by name, {DEMO_ROUTER}, {DEMO_ROUTER}-<willingness to pay>, "
            f"{DEMO_PLANS}, {DEMO_CASCADE}"
        )
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return _serve(args.host, args.port, args.workers)


def _serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM or SIGINT: one worker in this process, or ``workers`` under a supervisor."""
    if workers <= 1:
        uvicorn.run(
            app_from_environment(),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # the usage log records every request
            timeout_graceful_shutdown=REQUEST_DRAIN_SECONDS,
        )
        return 0
    try:
        listener = bind_listener(host, port)
    except OSError as exc:
        print(f"routeyard: error: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    with listener:
        return WorkerSupervisor(WORKER_COMMAND, listener, workers, grace_seconds=SHUTDOWN_GRACE_SECONDS).run()
