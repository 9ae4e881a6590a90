"""The key plane over HTTP, for the admin key only: ``/admin/keys``.

- ``GET /admin/keys``: every virtual key (revoked ones too), without secrets.
- ``POST /admin/keys``: create one from a :class:`~routeyard.gateway.keys.virtual_key.KeyLimits` body;
  the answer holds the plain key, shown this once (``201``).
- ``GET /admin/keys/{id}``: one key and its usage now (this UTC day's and month's $, this minute's
  requests and tokens).
- ``DELETE /admin/keys/{id}``: revoke it; its requests are refused from then on.

Without ``virtual_keys`` these answer 404 ``virtual_keys_off``. ``routeyard keys`` does the same from a
shell, on the same store.

- ``POST /admin/reload``: load the config file again, replay its routers and the serving ones on
  ``reload_table`` and swap them in only when no router's AIQ drops by more than ``reload_tolerance``
  (``routeyard.gateway.policy_reload``). ``200`` with both AIQs per router and the verdict, accepted or
  rejected; ``409`` while another reload runs or when the gateway cannot gate one; ``422`` for a config
  that does not load.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse

from routeyard.gateway.errors import InvalidRequestError, NotFoundError
from routeyard.gateway.keys.virtual_key import KeyLimits, KeyStore
from routeyard.gateway.policy_reload import PolicyReloader, ReloadNotConfiguredError
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.wire import read_body
from routeyard.validation import validation_problems

MAX_KEY_BODY_BYTES = 16_384


def add_admin_routes(app: FastAPI, runtime: GatewayRuntime, reloader: PolicyReloader | None = None) -> None:
    """Add ``/admin/keys`` and ``/admin/reload`` (see the module docstring) to ``app``, over ``runtime``'s
    key store and ``reloader`` (None: reloads answer 409 ``reload_not_configured``)."""
    authenticator = runtime.authenticator

    def store_for(request: Request) -> KeyStore:
        authenticator.admin(request.headers)
        if runtime.key_store is None:
            raise NotFoundError("virtual keys are off (virtual_keys: false)", code="virtual_keys_off")
        return runtime.key_store

    @app.get("/admin/keys")
    async def list_keys(request: Request) -> dict[str, Any]:
        records = await store_for(request).list()
        return {"object": "list", "data": [record.public() for record in records]}

    @app.post("/admin/keys", status_code=201)
    async def create_key(request: Request) -> JSONResponse:
        store = store_for(request)
        limits = _limits(await read_body(request, MAX_KEY_BODY_BYTES, "key", timeout=10.0))
        record, plain = await store.create(limits)
        return JSONResponse({**record.public(), "key": plain}, status_code=201)

    @app.get("/admin/keys/{key_id}")
    async def show_key(request: Request, key_id: str) -> dict[str, Any]:
        store = store_for(request)
        record = await store.get(key_id)
        if record is None:
            raise NotFoundError(f"no key {key_id}", param="id", code="key_not_found")
        usage = await store.usage(key_id, time.time())
        return {**record.public(), "usage": usage.__dict__}

    @app.post("/admin/reload")
    async def reload(request: Request) -> dict[str, Any]:
        authenticator.admin(request.headers)
        if reloader is None:
            raise ReloadNotConfiguredError("this gateway does not reload its routers")
        return (await reloader.reload()).body()

    @app.delete("/admin/keys/{key_id}")
    async def revoke_key(request: Request, key_id: str) -> dict[str, Any]:
        if not await store_for(request).revoke(key_id):
            raise NotFoundError(f"no key {key_id}", param="id", code="key_not_found")
        return {"id": key_id, "revoked": True}


def _limits(raw: bytes) -> KeyLimits:
    try:
        return KeyLimits.model_validate_json(raw)
    except ValidationError as exc:
        where, message = validation_problems(exc)[0]
        raise InvalidRequestError(f"{where or 'body'}: {message}", param=where or None) from exc
