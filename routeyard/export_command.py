"""``routeyard export``: the gateway's logged requests with quality feedback, as a long outcome table."""

from __future__ import annotations

import argparse
from pathlib import Path

import redis

from gateway.usage_export import ExportedTable, feedback_table
from predictor.long_format import write_long_table


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "export",
        help="write logged requests that got quality feedback as a long outcome table (for `train`)",
        description="Requests need their prompt text in the log: serve with `store_prompts: true`.",
    )
    parser.add_argument(
        "--redis", required=True, help="the usage log's Redis URL, e.g. redis://127.0.0.1:6379/0"
    )
    parser.add_argument("--prefix", default="routeyard", help="key prefix of the usage log")
    parser.add_argument("--out", type=Path, required=True, help=".csv, .csv.gz, .jsonl or .parquet")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        exported = feedback_table(
            redis.Redis.from_url(args.redis, socket_timeout=10, decode_responses=True), args.prefix
        )
    except redis.RedisError as exc:
        raise ValueError(f"cannot read the usage log at {args.redis}: {type(exc).__name__}") from exc
    if exported.table.n_prompts == 0:
        raise ValueError(
            f"no exportable request among {exported.requests_seen} answered ({_left_out(exported)})"
        )
    write_long_table(exported.table, args.out)
    table = exported.table
    print(
        f"wrote {table.n_prompts} rated requests of {table.n_models} backends to {args.out}",
        _left_out(exported),
        sep="; ",
    )
    return 0


def _left_out(exported: ExportedTable) -> str:
    return (
        f"left out: {exported.without_feedback} without feedback, {exported.without_prompt} without prompt "
        "text (serve with store_prompts: true to keep it)"
    )
