"""The SQLite key store: virtual keys and their counters in one file, for ONE HOST ONLY.

It serves a gateway on one machine — one replica, however many worker processes it runs there: they
share the file, and every write is a ``BEGIN IMMEDIATE`` transaction (WAL mode, a busy timeout), so a
reserve's check and count are atomic across those processes. It cannot serve replicas on several
hosts (SQLite over a network file system does not lock reliably): use the Redis store
(``redis_key_store``) for those.

The same semantics and answers as the Redis store: what both compute comes from ``key_windows``, and the
check in :func:`limits_verdict` is the Redis script's, step for step. Tables: ``keys`` (the record as
JSON, as created, with its expiry and revocation time in columns) and ``counters`` (one row per key and
counter name, with the instant it expires, judged by the ``now`` of the key's reserves: the Redis
store's EXPIRE).

Every call runs its blocking SQLite work in a thread (``asyncio.to_thread``), on one connection held
under a lock; concurrent reserves and settles go as groups (``group_commit``), one transaction and one
thread hop each, every operation applied as if alone. ``synchronous=NORMAL``: a power cut can lose the
last moments' counts, never corrupt the file.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from routeyard.gateway.keys.group_commit import GroupCommit
from routeyard.gateway.keys.key_windows import (
    NO_BUDGET,
    KeyWindows,
    Verdict,
    admission,
    budgets_micro,
    corrections,
    counter_names,
    reservation_at,
    windows_at,
)
from routeyard.gateway.keys.virtual_key import (
    MICRO_USD,
    Admission,
    KeyLimits,
    KeyRecord,
    KeyUsage,
    Reservation,
    new_key,
)

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 10.0  # how long a write waits for another process's transaction
_NEW_ID_ATTEMPTS = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS counters (
    key_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key_id, name)
) WITHOUT ROWID;
"""
_ADD = """
INSERT INTO counters (key_id, name, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (key_id, name) DO UPDATE SET value = value + excluded.value, expires_at = excluded.expires_at
"""


class SqliteKeyStore:
    """A :class:`~routeyard.gateway.keys.virtual_key.KeyStore` in the SQLite file at ``path`` (created
    if absent, with its tables), for one host only (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._group: GroupCommit[_InTransaction, Any] = GroupCommit(self._apply_group)
        with self._transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)

    async def create(self, limits: KeyLimits) -> tuple[KeyRecord, str]:
        """A new key: its record and its plain key (not stored)."""
        return await self._run(self._create, limits)

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self._run(self._get, key_id)

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        return await self._run(self._list)

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key (False when there is no such key); a second revocation keeps the first's time."""
        return await self._run(self._revoke, key_id, time.time())

    async def reserve(
        self, record: KeyRecord, *, cost_usd: float, tokens: int, count_request: bool = True, now: float
    ) -> Admission:
        """See :meth:`KeyStore.reserve`; raises ValueError for a negative or non-finite cost or tokens."""
        windows = windows_at(now)
        reservation = reservation_at(record.id, windows, cost_usd, tokens)
        verdict, counts = await self._group.submit(
            functools.partial(
                _reserve_in, record=record, reservation=reservation, windows=windows, count=count_request
            )
        )
        return admission(verdict, reservation, record.limits, windows, (counts[0], counts[1]))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """See :meth:`KeyStore.settle`; raises ValueError for a negative or non-finite cost or tokens."""
        dollars, more_tokens = corrections(reservation, cost_usd, tokens)
        if dollars or more_tokens:
            settle = functools.partial(
                _settle_in, reservation=reservation, dollars=dollars, tokens=more_tokens
            )
            await self._group.submit(settle, urgent=False)

    async def usage(self, key_id: str, now: float) -> KeyUsage:
        """The key's counters in ``now``'s windows (zeros for an unknown key)."""
        return await self._run(self._usage, key_id, now)

    async def close(self) -> None:
        await self._group.close()
        await self._run(self._connection.close)

    async def _apply_group(self, group: builtins.list[_InTransaction]) -> builtins.list[Any]:
        """``group``'s operations in one transaction, in one thread hop (``group_commit``)."""

        def in_one_transaction() -> builtins.list[Any]:
            with self._transaction() as db:
                return [operation(db) for operation in group]

        return await self._run(in_one_transaction)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` in a thread, holding the connection's lock."""

        def locked() -> T:
            with self._lock:
                return work(*args)

        return await asyncio.to_thread(locked)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: other processes wait for it), rolled back on error."""
        db = self._connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _create(self, limits: KeyLimits) -> tuple[KeyRecord, str]:
        for _ in range(_NEW_ID_ATTEMPTS):
            record, plain = new_key(limits)
            row = (record.id, record.model_dump_json(), record.created_at, limits.expires_at)
            try:
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO keys (id, record, created_at, expires_at) VALUES (?, ?, ?, ?)", row
                    )
            except sqlite3.IntegrityError:  # the id is taken
                continue
            return record, plain
        raise RuntimeError("no free key id found")  # unreachable in practice: 48 random bits each time

    def _get(self, key_id: str) -> KeyRecord | None:
        row = self._connection.execute(
            "SELECT record, revoked_at FROM keys WHERE id = ?", (key_id,)
        ).fetchone()
        return None if row is None else _record(*row)

    def _list(self) -> builtins.list[KeyRecord]:
        rows = self._connection.execute("SELECT record, revoked_at FROM keys ORDER BY created_at, id")
        return [_record(*row) for row in rows]

    def _revoke(self, key_id: str, now: float) -> bool:
        with self._transaction() as db:
            done = db.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, key_id)
            )
        return done.rowcount > 0

    def _usage(self, key_id: str, now: float) -> KeyUsage:
        day, month, requests, tokens = _counts(self._connection, key_id, windows_at(now).counter_names(), now)
        return KeyUsage(day / MICRO_USD, month / MICRO_USD, requests, tokens)


_InTransaction = Callable[[sqlite3.Connection], Any]  # one operation of a group, run in its transaction


def _reserve_in(
    db: sqlite3.Connection, *, record: KeyRecord, reservation: Reservation, windows: KeyWindows, count: bool
) -> tuple[Verdict, tuple[int, int, int, int]]:
    """Check ``reservation`` and count it when admitted (the Redis script's reserve); its verdict and the
    counts it was judged on."""
    verdict, counts = _check(db, record, reservation, windows, count)
    if verdict == Verdict.ADMITTED:
        _count(db, reservation, windows, count)
    return verdict, counts


def _settle_in(db: sqlite3.Connection, *, reservation: Reservation, dollars: int, tokens: int) -> None:
    """Correct ``reservation``'s counters by ``dollars`` (micro-$) and ``tokens`` (gone ones: left alone)."""
    day, month, _, minute_tokens = counter_names(reservation.day, reservation.month, reservation.minute)
    update = "UPDATE counters SET value = value + ? WHERE key_id = ? AND name = ?"
    for name, delta in ((day, dollars), (month, dollars), (minute_tokens, tokens)):
        if delta:
            db.execute(update, (delta, reservation.key_id, name))


def limits_verdict(
    limits: KeyLimits, counts: tuple[int, int, int, int], reservation: Reservation, count_request: bool
) -> Verdict:
    """The Redis reserve script's check: ``counts`` are the day's $, the month's $, the minute's requests
    and tokens before ``reservation``; rpm (only when ``count_request``), tpm, the month budget, the day
    budget, in that order."""
    day, month, requests, tokens = counts
    cost = reservation.cost_micro_usd
    day_budget, month_budget = budgets_micro(limits)
    if count_request and limits.rpm is not None and requests >= limits.rpm:
        return Verdict.RATE_LIMITED
    if limits.tpm is not None and tokens + reservation.tokens > limits.tpm:
        return Verdict.RATE_LIMITED
    if month_budget != NO_BUDGET and month + cost > month_budget:
        return Verdict.MONTH_BUDGET
    if day_budget != NO_BUDGET and day + cost > day_budget:
        return Verdict.DAY_BUDGET
    return Verdict.ADMITTED


def _check(
    db: sqlite3.Connection,
    record: KeyRecord,
    reservation: Reservation,
    windows: KeyWindows,
    count_request: bool,
) -> tuple[Verdict, tuple[int, int, int, int]]:
    """The verdict on ``reservation`` and the counts it was judged on (zeros when the key itself is
    refused); drops the key's expired counters first."""
    verdict = _key_verdict(db, record.id, windows.now)
    if verdict != Verdict.ADMITTED:
        return verdict, (0, 0, 0, 0)
    db.execute("DELETE FROM counters WHERE key_id = ? AND expires_at <= ?", (record.id, windows.now))
    counts = _counts(db, record.id, windows.counter_names())
    return limits_verdict(record.limits, counts, reservation, count_request), counts


def _count(
    db: sqlite3.Connection, reservation: Reservation, windows: KeyWindows, count_request: bool
) -> None:
    """Add ``reservation`` to its counters, each to live its window's TTL from ``windows.now``."""
    cost = reservation.cost_micro_usd
    added = (cost, cost, int(count_request), reservation.tokens)
    minute_ttl, day_ttl, month_ttl = windows.ttls()
    lifetimes = (day_ttl, month_ttl, minute_ttl, minute_ttl)
    names = windows.counter_names()
    rows = [
        (reservation.key_id, n, a, windows.now + t) for n, a, t in zip(names, added, lifetimes, strict=True)
    ]
    db.executemany(_ADD, rows)


def _key_verdict(db: sqlite3.Connection, key_id: str, now: float) -> Verdict:
    """Whether the stored key is unknown, revoked or expired at ``now``, else ADMITTED (so far)."""
    row = db.execute("SELECT expires_at, revoked_at FROM keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        return Verdict.UNKNOWN_KEY
    expires_at, revoked_at = row
    if revoked_at is not None:
        return Verdict.REVOKED
    return Verdict.EXPIRED if expires_at is not None and now >= expires_at else Verdict.ADMITTED


def _counts(
    db: sqlite3.Connection, key_id: str, names: tuple[str, str, str, str], now: float | None = None
) -> tuple[int, int, int, int]:
    """The values of ``key_id``'s counters ``names`` (0 where absent or, given ``now``, expired)."""
    query = "SELECT name, value FROM counters WHERE key_id = ? AND expires_at > ? AND name IN (?, ?, ?, ?)"
    found = dict(db.execute(query, (key_id, float("-inf") if now is None else now, *names)).fetchall())
    day, month, requests, tokens = (int(found.get(name, 0)) for name in names)
    return day, month, requests, tokens


def _record(stored: str, revoked_at: float | None) -> KeyRecord:
    record = KeyRecord.model_validate_json(stored)
    return record if revoked_at is None else record.model_copy(update={"revoked_at": revoked_at})
