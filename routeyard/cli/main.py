"""The `routeyard` command line: parse arguments, build objects, call into the layers.

Each command lives in its own module (``routeyard/cli/<name>_command.py``) with ``add_parser`` and ``run``.
"""

from __future__ import annotations

import argparse
import sys

from routeyard.cli import (
    collect_command,
    distill_command,
    export_command,
    keys_command,
    onnx_command,
    replay_command,
    serve_command,
    train_command,
    train_judge_command,
)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the process exit code (0 ok, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValueError as exc:  # every input error of ours is one: OutcomeTableError, ArtifactError, …
        print(f"routeyard: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="routeyard", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    replay_command.add_parser(commands)
    train_command.add_parser(commands)
    train_judge_command.add_parser(commands)
    onnx_command.add_parser(commands)
    distill_command.add_parser(commands)
    serve_command.add_parser(commands)
    export_command.add_parser(commands)
    keys_command.add_parser(commands)
    collect_command.add_parser(commands)
    return parser
