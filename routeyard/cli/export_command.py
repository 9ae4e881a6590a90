"""``routeyard export``: the gateway's logged requests with quality feedback, as a long outcome table;
with ``--explored``, its explored requests' graded answers (both of each: what the router chose and what
it did not; ``routeyard.gateway.exploration_export``).

Every failure is a ValueError with one clear line (the CLI prints it and exits 2), and no message
carries the Redis URL's password.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import redis

from routeyard.gateway.exploration_export import ExploredExport, explored_frame, write_explored
from routeyard.gateway.usage_export import ExportedTable, UsageExportError, feedback_table, redacted
from routeyard.predictor.long_format import write_long_table


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
    parser.add_argument(
        "--explored",
        action="store_true",
        help="write the explored requests' graded answers instead (routers' exploration; with the columns "
        "chosen, propensity and candidates that `routeyard replay --live` reads)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    where = redacted(args.redis, args.redis)
    try:
        client = redis.Redis.from_url(
            args.redis, socket_timeout=10, decode_responses=True, encoding_errors="replace"
        )
        with client:
            if args.explored:
                return _write_explored(explored_frame(client, args.prefix), args.out)
            exported = feedback_table(client, args.prefix)
    except (UsageExportError, redis.RedisError, ValueError) as exc:  # ValueError: a malformed URL
        reason = exc.reason if isinstance(exc, UsageExportError) else f"{type(exc).__name__}: {exc}"
        # from None: the cause (say, urllib's ValueError on a malformed URL) may quote the password
        raise ValueError(f"cannot read the usage log at {where}: {redacted(reason, args.redis)}") from None
    table = exported.table
    if table is None:
        raise ValueError(
            f"no exportable request among {exported.requests_seen} answered ({_left_out(exported)})"
        )
    try:
        write_long_table(table, args.out)
    except OSError as exc:
        raise ValueError(f"cannot write {args.out}: {exc.strerror or type(exc).__name__}") from exc
    print(
        f"wrote {table.n_prompts} rated requests of {table.n_models} backends to {args.out}",
        _left_out(exported),
        sep="; ",
    )
    return 0


def _write_explored(exported: ExploredExport, out: Path) -> int:
    left_out = (
        f"left out: {exported.incomplete} without both answers, {exported.without_prompt} without prompt "
        f"text (serve with store_prompts: true to keep it), {exported.damaged} damaged"
    )
    if exported.frame is None:
        raise ValueError(f"no exportable explored request among {exported.requests_seen} ({left_out})")
    try:
        write_explored(exported.frame, out)
    except OSError as exc:
        raise ValueError(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from exc
    print(
        f"wrote {len(exported.frame) // 2} explored requests (two answers each) to {out}", left_out, sep="; "
    )
    return 0


def _left_out(exported: ExportedTable) -> str:
    return (
        f"left out: {exported.without_feedback} without feedback, {exported.without_prompt} without prompt "
        "text (serve with store_prompts: true to keep it), "
        f"{exported.duplicates} duplicate records of a request id (the first kept), "
        f"{exported.damaged} damaged records or feedbacks"
    )
