"""``routeyard serve``: run the gateway under uvicorn, on a config file or the embedded default."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from routeyard.cli.embedders import cache_dir
from routeyard.demo.config import DEMO_CASCADE, DEMO_PLANS, DEMO_ROUTER, demo_config
from routeyard.gateway.app import create_app
from routeyard.gateway.settings import load_settings

CONFIG_VARIABLE = "ROUTEYARD_CONFIG_FILE"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the OpenAI-compatible routing gateway",
        description="With no --config: the embedded demo (RouterBench replay backends, KNN routing).",
    )
    parser.add_argument("--config", type=Path, help="routeyard.yaml (default: the embedded demo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "routeyard.cli.serve_command:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


def app_from_environment() -> object:
    """The app for a uvicorn worker: the settings file ``serve`` chose travels in the environment."""
    return create_app(load_settings(os.environ[CONFIG_VARIABLE]))
