"""A virtual key: what it may do (:class:`KeyLimits`), how it is stored (:class:`KeyRecord`), and the
:class:`KeyStore` seam its stores implement (Redis: ``redis_key_store``; SQLite: ``sqlite_key_store``).

A plain key reads ``ry-<id>-<secret>``: ``id`` (12 hex digits) finds the record, ``secret`` is checked
against the record's salted SHA-256 (:func:`hash_secret`). The plain key is returned once, by
:meth:`KeyStore.create`, and never stored. SHA-256 rather than a slow password hash: the secret is 192
random bits, so nothing can be guessed, and a request must not pay 50 ms of scrypt.

Enforcement is a reservation: before a call, :meth:`KeyStore.reserve` checks the key (revoked, expired),
its rate limits and its budgets, and — in one atomic step — counts the request, its estimated tokens and
its predicted $ against the current minute, UTC day and UTC month. After the call,
:meth:`KeyStore.settle` replaces the reserved $ and tokens with the actual ones, in the windows the
reservation was made in. So a budget is overshot by no more than what the requests in flight at its last
admission cost beyond their reservations (none, when the predictions hold); one request at a time, by
no more than that one's excess.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

KEY_PREFIX = "ry-"
_PLAIN_KEY = re.compile(r"^ry-([0-9a-f]{12})-([A-Za-z0-9_-]{16,64})$")
MICRO_USD = 1_000_000  # stores count $ in integer micro-dollars: no float drift across replicas


class KeyLimits(BaseModel):
    """What a key may do; None means unlimited (or, for ``routers`` and ``backends``, all of them).

    ``downgrade_at`` (a fraction of a budget, e.g. 0.8): once the key's spend with a request's reservation
    passes it, the request is routed at ``downgrade_willingness_to_pay`` instead (cheaper); it is refused
    only when even that does not fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    budget_day_usd: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    budget_month_usd: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    routers: tuple[str, ...] | None = None
    backends: tuple[str, ...] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_n: int | None = Field(default=None, ge=1)
    expires_at: float | None = None  # unix seconds
    downgrade_at: float | None = Field(default=None, gt=0.0, le=1.0)
    downgrade_willingness_to_pay: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    metadata: dict[str, str] = Field(default_factory=dict)


class KeyRecord(BaseModel):
    """A stored key: its ``id``, its ``limits``, the salt and salted hash of its secret, when it was
    created, and when it was revoked (None while it is live)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    limits: KeyLimits
    salt: str
    secret_sha256: str
    created_at: float
    revoked_at: float | None = None

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is this key's (in constant time)."""
        return hmac.compare_digest(hash_secret(self.salt, secret), self.secret_sha256)

    def expired(self, now: float) -> bool:
        return self.limits.expires_at is not None and now >= self.limits.expires_at

    def public(self) -> dict[str, object]:
        """The record without its salt and hash: what ``keys list|show`` and ``/admin/keys`` show."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            **self.limits.model_dump(),
        }


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def new_key(limits: KeyLimits, now: float | None = None) -> tuple[KeyRecord, str]:
    """A fresh record for ``limits`` and its plain key (``ry-<id>-<secret>``, shown once)."""
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(24), secrets.token_hex(16)
    record = KeyRecord(
        id=key_id,
        limits=limits,
        salt=salt,
        secret_sha256=hash_secret(salt, secret),
        created_at=time.time() if now is None else now,
    )
    return record, f"{KEY_PREFIX}{key_id}-{secret}"


def parse_plain_key(plain: str) -> tuple[str, str] | None:
    """(id, secret) of a plain key, or None when it is not shaped like one."""
    match = _PLAIN_KEY.match(plain)
    return (match.group(1), match.group(2)) if match else None


Refusal = Literal["budget_exceeded", "rate_limited", "revoked", "expired", "unknown_key"]


@dataclass(frozen=True)
class Reservation:
    """What :meth:`KeyStore.reserve` counted, and in which windows (``day``: ``YYYYMMDD``, ``month``:
    ``YYYYMM``, ``minute``: unix minutes), so that :meth:`KeyStore.settle` corrects the same ones."""

    key_id: str
    cost_micro_usd: int
    tokens: int
    day: str
    month: str
    minute: int


@dataclass(frozen=True)
class Admission:
    """:meth:`KeyStore.reserve`'s answer: a ``reservation`` (None when refused, with the ``refusal`` and
    the seconds until it may succeed, ``retry_after``), and ``budget_fraction``: the largest share of a
    budget the key has used, this reservation included (0 without budgets)."""

    reservation: Reservation | None
    refusal: Refusal | None = None
    retry_after: int = 0
    budget_fraction: float = 0.0


@dataclass(frozen=True)
class KeyUsage:
    """A key's counters now: $ this UTC day and month, requests and tokens this minute."""

    spent_day_usd: float
    spent_month_usd: float
    requests_this_minute: int
    tokens_this_minute: int


class KeyStore(Protocol):
    """Where keys and their counters live (see the module docstring). Every method is atomic across the
    processes that share the store."""

    async def create(self, limits: KeyLimits) -> tuple[KeyRecord, str]:
        """A new key: its record and its plain key (not stored)."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        ...

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key (False when there is no such key); its requests are refused from then on."""
        ...

    async def reserve(
        self, record: KeyRecord, *, cost_usd: float, tokens: int, count_request: bool = True, now: float
    ) -> Admission:
        """Check and count one request of ``record``'s key at ``now`` (see the module docstring). Refused,
        nothing is counted: ``revoked`` or ``expired`` (checked against the store, not ``record``);
        ``rate_limited`` when the minute's requests reached ``rpm`` (only when ``count_request``) or its
        tokens plus ``tokens`` would pass ``tpm``; ``budget_exceeded`` when the day's or month's $ plus
        ``cost_usd`` would pass a budget."""
        ...

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """Replace ``reservation``'s $ and tokens by the actual ones (0 and 0 release it)."""
        ...

    async def usage(self, key_id: str, now: float) -> KeyUsage: ...

    async def close(self) -> None: ...
