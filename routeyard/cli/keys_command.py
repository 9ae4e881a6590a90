"""``routeyard keys create|list|show|revoke``: manage the gateway's virtual keys in its key store.

The store is the one the gateway uses (``routeyard.gateway.keys.key_store_choice``): Redis at
``redis_url`` if the config (``--config``, or ``ROUTEYARD_*`` variables) sets one, else SQLite at
``keys_db``. ``create`` prints the plain key once: it is not stored, and cannot be shown again. No output
carries a key's salt or hash; ``--json`` makes every action's output machine-readable.

Every failure is a ValueError with one clear line (the CLI prints it and exits 2): bad limits, an unknown
id, a store that cannot be reached (no message carries the Redis URL's password).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
from pydantic import ValidationError

from routeyard.cli.arguments import names
from routeyard.gateway.keys.key_store_choice import open_key_store
from routeyard.gateway.keys.virtual_key import KeyLimits, KeyRecord, KeyStore, KeyUsage
from routeyard.gateway.settings import GatewaySettings, load_settings
from routeyard.gateway.usage_export import redacted
from routeyard.validation import validation_problems

T = TypeVar("T")
_RELATIVE = re.compile(r"^(\d+)([dhm])$")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "keys",
        help="create, list, show and revoke the gateway's virtual keys",
        description="The key store: Redis at redis_url if set, else SQLite at keys_db (see --config).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="routeyard.yaml (default: the settings' defaults)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    actions = parser.add_subparsers(required=True, metavar="ACTION")
    _add_create(actions, common)
    listing = actions.add_parser("list", parents=[common], help="every key, revoked and expired ones too")
    listing.set_defaults(run=_list)
    show = actions.add_parser("show", parents=[common], help="one key and its current usage")
    show.add_argument("id", help="the key's id (the 12 hex digits after ry-)")
    show.set_defaults(run=_show)
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key: refused from now on")
    revoke.add_argument("id", help="the key's id (the 12 hex digits after ry-)")
    revoke.set_defaults(run=_revoke)


def _add_create(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    create = actions.add_parser("create", parents=[common], help="create a key; prints it once")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--budget-day", type=float, metavar="USD", help="$ per UTC day")
    create.add_argument("--budget-month", type=float, metavar="USD", help="$ per UTC month")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--routers", type=names, help="comma-separated routers it may use (default: all)")
    create.add_argument("--backends", type=names, help="comma-separated backends it may use (default: all)")
    create.add_argument("--max-tokens", type=int, help="cap on a request's max_tokens")
    create.add_argument("--max-n", type=int, help="cap on a request's n")
    create.add_argument(
        "--expires", type=expiry, metavar="WHEN", help="a UTC date or time (2027-01-01), or 30d, 12h, 90m"
    )
    create.add_argument(
        "--downgrade-at",
        type=float,
        metavar="FRACTION",
        help="route cheaper past this share of a budget (e.g. 0.8)",
    )
    create.add_argument(
        "--downgrade-willingness-to-pay",
        type=float,
        default=0.0,
        metavar="WTP",
        help="the willingness to pay past --downgrade-at (default 0)",
    )
    create.add_argument(
        "--metadata", nargs="+", action="extend", default=[], metavar="K=V", help="labels kept with the key"
    )
    create.set_defaults(run=_create)


def expiry(text: str, now: float | None = None) -> float:
    """Unix seconds of ``text``: ``30d``, ``12h`` or ``90m`` from ``now``, or an ISO date or time (UTC
    unless it says otherwise). Raises ValueError."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        start = time.time() if now is None else now
        return start + int(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--expires {text!r}: give a date (2027-01-01), a time, or 30d, 12h, 90m") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()


def _create(args: argparse.Namespace) -> int:
    limits = _limits(args)
    if limits.expires_at is not None and limits.expires_at <= time.time():
        raise ValueError("--expires is in the past")
    record, plain = _on_store(args, lambda store: store.create(limits))
    if args.json:
        _print_json({"key": plain, "record": described(record)})
        return 0
    print(f"key: {plain}")
    print("  (shown only now: it is not stored and will not be shown again)")
    _print_fields(described(record))
    return 0


def _list(args: argparse.Namespace) -> int:
    records = _on_store(args, lambda store: store.list())
    rows = [described(record) for record in records]
    if args.json:
        _print_json(rows)
        return 0
    header = ("ID", "NAME", "CREATED", "STATE", "BUDGET/DAY", "BUDGET/MONTH")
    table = [header] + [
        (
            str(row["id"]),
            str(row["name"]),
            _utc(row["created_at"]),
            str(row["state"]),
            _dollars(row["budget_day_usd"]),
            _dollars(row["budget_month_usd"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0


def _show(args: argparse.Namespace) -> int:
    async def both(store: KeyStore) -> tuple[KeyRecord | None, KeyUsage]:
        return await store.get(args.id), await store.usage(args.id, time.time())

    record, usage = _on_store(args, both)
    if record is None:
        raise ValueError(f"no key with id {args.id!r}")
    used = dataclasses.asdict(usage)
    if args.json:
        _print_json({"record": described(record), "usage": used})
        return 0
    _print_fields({**described(record), **used})
    return 0


def _revoke(args: argparse.Namespace) -> int:
    if not _on_store(args, lambda store: store.revoke(args.id)):
        raise ValueError(f"no key with id {args.id!r}")
    if args.json:
        _print_json({"id": args.id, "revoked": True})
    else:
        print(f"revoked key {args.id}: its requests are refused from now on")
    return 0


def described(record: KeyRecord, now: float | None = None) -> dict[str, Any]:
    """The record's public fields (no salt, no hash) and its ``state`` at ``now``: live, revoked or
    expired."""
    moment = time.time() if now is None else now
    state = "revoked" if record.revoked_at is not None else "expired" if record.expired(moment) else "live"
    return {**record.public(), "state": state}


def _limits(args: argparse.Namespace) -> KeyLimits:
    """The limits the create options give; raises ValueError naming every bad one."""
    try:
        return KeyLimits(
            name=args.name,
            budget_day_usd=args.budget_day,
            budget_month_usd=args.budget_month,
            rpm=args.rpm,
            tpm=args.tpm,
            routers=args.routers,
            backends=args.backends,
            max_tokens=args.max_tokens,
            max_n=args.max_n,
            expires_at=args.expires,
            downgrade_at=args.downgrade_at,
            downgrade_willingness_to_pay=args.downgrade_willingness_to_pay,
            metadata=_metadata(args.metadata),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{where}: {message}" for where, message in validation_problems(exc))
        raise ValueError(f"invalid key limits: {problems}") from None


def _metadata(pairs: list[str]) -> dict[str, str]:
    """``k=v`` pairs as a mapping; raises ValueError for one without ``=`` or a name."""
    metadata = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise ValueError(f"--metadata {pair!r}: give name=value")
        metadata[name] = value
    return metadata


def _on_store(args: argparse.Namespace, action: Callable[[KeyStore], Awaitable[T]]) -> T:
    """``action`` on the key store the config names; a store that fails is a one-line ValueError."""
    settings = load_settings(args.config)

    async def session() -> T:
        store = open_key_store(settings)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(session())
    except (redis.RedisError, sqlite3.Error, OSError) as exc:
        where = _where(settings)
        reason = redacted(f"{type(exc).__name__}: {exc}", settings.redis_url)
        raise ValueError(f"cannot use the key store at {where}: {reason}") from None


def _where(settings: GatewaySettings) -> str:
    if settings.redis_url is not None:
        return redacted(settings.redis_url, settings.redis_url)
    return str(settings.keys_db.expanduser())


def _print_fields(fields: dict[str, Any]) -> None:
    """``name: value`` lines for the fields that are set."""
    for name, value in fields.items():
        if (
            value is None
            or value == {}
            or (name == "downgrade_willingness_to_pay" and not fields["downgrade_at"])
        ):
            continue
        if name in ("created_at", "revoked_at", "expires_at"):
            value = _utc(value)
        elif isinstance(value, (tuple, list)):
            value = ",".join(value)
        elif isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items())
        print(f"{name}: {value}")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _dollars(amount: float | None) -> str:
    return "-" if amount is None else f"${amount:g}"


def _utc(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
