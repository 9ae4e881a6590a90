"""Which response-cache store the settings name: Redis at ``redis_url`` (every replica shares it), else
one process's memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from routeyard.gateway.response_cache.memory_store import InMemoryResponseCache
from routeyard.gateway.response_cache.redis_store import RedisResponseCache
from routeyard.gateway.response_cache.store import ResponseCacheStore

if TYPE_CHECKING:
    from routeyard.gateway.settings import GatewaySettings


def response_cache_store(settings: GatewaySettings) -> ResponseCacheStore:
    """The store ``settings`` (a ``GatewaySettings``) ask for: Redis at ``redis_url``, else memory, bounded
    by ``cache_ttl_seconds``, ``cache_max_entries`` and ``cache_max_entry_bytes`` (memory also by
    ``cache_max_memory_bytes``; Redis by its own ``maxmemory``)."""
    ttl, entries, entry_bytes = (
        settings.cache_ttl_seconds,
        settings.cache_max_entries,
        settings.cache_max_entry_bytes,
    )
    if settings.redis_url:
        return RedisResponseCache(
            settings.redis_url, ttl_seconds=ttl, max_entries=entries, max_entry_bytes=entry_bytes
        )
    return InMemoryResponseCache(ttl, entries, entry_bytes, settings.cache_max_memory_bytes)
