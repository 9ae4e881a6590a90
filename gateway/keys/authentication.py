"""Who is calling: a listed client key, a virtual key, the admin key, or nobody (no keys configured).

:class:`Authenticator` reads ``Authorization: Bearer <key>`` (for the admin key also HTTP Basic, any user
name and the key as password, so a browser can open ``/dashboard``) and answers a :class:`Caller`:

- **client endpoints** (``/v1/chat/completions``, ``/v1/responses``, ``/v1/messages``, ``/v1/models``): a
  key from ``client_keys_env`` (no limits), or a live virtual key (``ry-<id>-<secret>``, see
  ``virtual_key``). With neither configured the API is open (``serve`` then refuses a non-loopback
  address, see the README's "Security"). ``/v1/messages`` also takes the key as ``x-api-key: <key>``,
  the header Anthropic's clients send.
- **admin endpoints** (``/admin/*``, ``/v1/stats``, ``/dashboard``, ``/metrics`` on the API port): the
  admin key. With no admin key configured they are open only while the API is (the local demo);
  otherwise refused (403), since nobody could be trusted with them.
- ``/v1/feedback`` takes either.

Virtual keys' records are cached for :data:`RECORD_TTL_SECONDS`; revocation and expiry still apply at
once to completions, because the store checks them again when it reserves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass

from routeyard.gateway.errors import (
    AdminKeyRequiredError,
    AuthenticationError,
    KeyStoreUnavailableError,
    PermissionDeniedError,
)
from routeyard.gateway.keys.virtual_key import KeyRecord, KeyStore, parse_plain_key

RECORD_TTL_SECONDS = 5.0
ADMIN = "admin"  # the caller id of the admin key (feedback's rater)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: ``client`` is the id its requests are logged under (``key_<hash>`` for a
    listed key, the virtual key's id, :data:`ADMIN`, or None without keys); ``key`` the virtual key's
    record; ``admin`` whether it holds the admin key."""

    client: str | None
    key: KeyRecord | None = None
    admin: bool = False


ANONYMOUS = Caller(None)


class Authenticator:
    """Checks callers against ``listed`` client keys, the virtual keys in ``store`` (None: off) and the
    ``admin_key`` (None: none); see the module docstring."""

    def __init__(self, listed: frozenset[str], store: KeyStore | None, admin_key: str | None) -> None:
        self.listed = listed
        self.store = store
        self.admin_key = admin_key
        self._records: dict[str, tuple[float, KeyRecord | None]] = {}

    @property
    def open_api(self) -> bool:
        """True when client endpoints need no key."""
        return not self.listed and self.store is None

    async def client(self, headers: Mapping[str, str], *, x_api_key: bool = False) -> Caller:
        """The caller of a client endpoint, by its Bearer token or (with ``x_api_key``, when there is no
        Bearer token) its ``x-api-key`` header; raises AuthenticationError (401)."""
        if self.open_api:
            return ANONYMOUS
        token = _bearer(headers) or (headers.get("x-api-key", "").strip() if x_api_key else "")
        if any(hmac.compare_digest(token.encode(), k.encode()) for k in self.listed):
            return Caller("key_" + hashlib.sha256(token.encode()).hexdigest()[:12])
        record = await self._virtual_key(token)
        if record is None:
            how = (
                "`x-api-key: <key>` or `Authorization: Bearer <key>`"
                if x_api_key
                else ("`Authorization: Bearer <key>`")
            )
            raise AuthenticationError(f"missing or invalid API key: send {how}")
        return Caller(record.id, record)

    def admin(self, headers: Mapping[str, str]) -> Caller:
        """The caller of an admin endpoint; raises AuthenticationError (401) or PermissionDeniedError (403)
        when no admin key is configured while the API needs keys."""
        if self.admin_key is None:
            if self.open_api:
                return Caller(None, admin=True)
            raise PermissionDeniedError(
                "admin endpoints are closed: no admin key is configured (admin_key_env)",
                code="admin_key_not_configured",
            )
        if not hmac.compare_digest(_admin_token(headers).encode(), self.admin_key.encode()):
            raise AdminKeyRequiredError("this endpoint needs the admin key")
        return Caller(ADMIN, admin=True)

    async def client_or_admin(self, headers: Mapping[str, str]) -> Caller:
        """The admin (when it is the admin key) or a client caller; raises like :meth:`client`."""
        token = _bearer(headers)
        if self.admin_key is not None and hmac.compare_digest(token.encode(), self.admin_key.encode()):
            return Caller(ADMIN, admin=True)
        return await self.client(headers)

    async def _virtual_key(self, token: str) -> KeyRecord | None:
        parsed = parse_plain_key(token) if self.store is not None else None
        if parsed is None:
            return None
        key_id, secret = parsed
        record = await self._record(key_id)
        now = time.time()
        if record is None or not record.matches(secret) or record.revoked_at or record.expired(now):
            return None
        return record

    async def _record(self, key_id: str) -> KeyRecord | None:
        """The record of ``key_id``, from the cache while it is fresh (unknown ids are cached too)."""
        now = time.monotonic()
        cached = self._records.get(key_id)
        if cached is not None and now - cached[0] < RECORD_TTL_SECONDS:
            return cached[1]
        assert self.store is not None
        try:
            record = await self.store.get(key_id)
        except Exception as exc:  # fail closed: a key that cannot be checked is not let in
            raise KeyStoreUnavailableError("the key store is unavailable; try again") from exc
        if len(self._records) > 100_000:  # guessed ids must not grow the cache without bound
            self._records.clear()
        self._records[key_id] = (now, record)
        return record


def _bearer(headers: Mapping[str, str]) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _admin_token(headers: Mapping[str, str]) -> str:
    """The Bearer token, or the password of HTTP Basic credentials ('' when neither)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2]
