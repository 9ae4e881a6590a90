"""Request ids that know their owner: ``req_<16 hex nonce><16 hex tag>``, the tag an HMAC of the nonce and
the id of the client's key.

``POST /v1/feedback`` accepts a rating only from the key that made the request (or the admin key). The id
itself proves it — :meth:`RequestIds.owned_by` recomputes the tag for the caller's key — so no lookup,
no storage, and any replica can check an id another one issued, provided they share the secret
(``request_id_secret_env``). Without one, each process draws a random secret: feedback then works on the
process that served the request, until it restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class RequestIds:
    """Issues and checks request ids under ``secret`` (None: a random one for this process)."""

    def __init__(self, secret: str | None = None) -> None:
        self._secret = (secret or secrets.token_hex(32)).encode()

    def new(self, client: str | None) -> str:
        """A fresh id for a request by the key with id ``client`` (None without keys)."""
        nonce = secrets.token_hex(8)
        return f"req_{nonce}{self._tag(nonce, client)}"

    def owned_by(self, request_id: str, client: str | None) -> bool:
        """Whether ``request_id`` (``req_`` and 32 hex digits) was issued to ``client``."""
        nonce, tag = request_id[4:20], request_id[20:]
        return hmac.compare_digest(self._tag(nonce, client), tag)

    def _tag(self, nonce: str, client: str | None) -> str:
        message = f"{nonce}|{client or ''}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:16]
