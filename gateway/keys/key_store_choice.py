"""Which key store the settings name: Redis at ``redis_url`` (every replica shares it), else SQLite at
``keys_db`` (one host), its directory and file created private to the user."""

from __future__ import annotations

import os
from pathlib import Path

from routeyard.gateway.keys.redis_key_store import RedisKeyStore
from routeyard.gateway.keys.sqlite_key_store import SqliteKeyStore
from routeyard.gateway.keys.virtual_key import KeyStore
from routeyard.gateway.settings import GatewaySettings


def open_key_store(settings: GatewaySettings) -> KeyStore:
    """A :class:`RedisKeyStore` at ``settings.redis_url`` when it is set, else a :class:`SqliteKeyStore`
    at ``settings.keys_db`` (``~`` expanded): the directories it creates get mode 0700, a new file 0600
    (existing ones are left as they are). Raises OSError when the file cannot be made."""
    if settings.redis_url is not None:
        return RedisKeyStore(settings.redis_url)
    path = settings.keys_db.expanduser()
    _make_private_directories(path.parent)
    _make_private_file(path)
    return SqliteKeyStore(path)


def _make_private_directories(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each with mode 0700 (whatever the umask)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for created in reversed(missing):
        try:
            created.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        created.chmod(0o700)


def _make_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (SQLite gives its -wal and -shm files the
    same mode)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)
    path.chmod(0o600)
