"""What a response-cache store is and keeps (``routeyard.gateway.response_cache.policy`` decides which
answers and under what keys): by exact key, and for semantic matches by the prompt's vector within a group.

A :class:`ResponseCacheStore` stores a :class:`CachedAnswer` under a key (a hex hash made by the caller;
groups too), optionally indexed by a vector in a group, and finds it again by key (:meth:`get`) or by
the most similar vector of the group (:meth:`nearest`). Vectors are float32 ``(d,)``; the store
normalises them itself (a caller's unit vectors are left as they are; a zero or non-finite vector is
not indexed, and finds nothing). It never fails a request: a store failure makes ``get``/``nearest``
answer None and ``put`` answer False, logged once per failure burst (the exception's type only: no
key, no text), never raised. An entry is the orjson bytes of the answer (no prompt text is ever given
to the store); one whose size exceeds ``max_entry_bytes`` is not stored. Entries expire ``ttl_seconds``
after their put; beyond ``max_entries`` the oldest put is evicted first. The vector index holds only
vectors of stored entries, so at most ``max_entries`` vectors, in at most that many groups, and a
search never answers with an expired or evicted entry.

The kinds are :class:`~routeyard.gateway.response_cache.memory_store.InMemoryResponseCache` (one
process) and :class:`~routeyard.gateway.response_cache.redis_store.RedisResponseCache` (the fleet), chosen
by ``routeyard.gateway.response_cache.store_choice``; both index vectors with
:class:`~routeyard.gateway.response_cache.vector_index.VectorIndex`. Here: the :class:`CachedAnswer`, the
:class:`ResponseCacheStore` seam, an entry's bytes (:func:`encode_answer`, :func:`decode_answer`,
:func:`entry_bytes`) and the check every ``put`` makes (:func:`check_indexing`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from routeyard.arrays import Vectors

logger = logging.getLogger("routeyard.gateway")

_FORMAT = 1  # an entry's layout: one written by another layout is a miss


@dataclass(frozen=True)
class CachedAnswer:
    """One answer as it was bought."""

    backend: str  # the backend that gave the answer
    body: dict[str, Any]  # the completion body (JSON-able) as it was answered, without routeyard's `routing`
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float  # what it cost when it was bought (a hit costs $0)
    stored_at: float  # unix time


class ResponseCacheStore(Protocol):
    """Answers by key and by vector (see the module docstring); no method raises on a store failure."""

    async def get(self, key: str) -> CachedAnswer | None:
        """The live answer stored under ``key``, or None (none, expired, evicted, or the store failed)."""
        ...

    async def nearest(
        self, group: str, vector: Vectors, threshold: float
    ) -> tuple[CachedAnswer, float] | None:
        """The cached answer in `group` whose vector has the highest cosine similarity to `vector`, if it is
        ≥ threshold, with that similarity; None otherwise."""
        ...

    async def put(
        self, key: str, answer: CachedAnswer, *, group: str | None = None, vector: Vectors | None = None
    ) -> bool:
        """Store (False when not stored: too large, or the store failed). With group+vector, the entry can
        also be found by `nearest`."""
        ...

    async def close(self) -> None:
        """Release the store's resources; it is not used afterwards."""
        ...


def encode_answer(answer: CachedAnswer) -> bytes:
    """``answer`` as an entry's bytes (orjson); raises TypeError when its body is not JSON-able."""
    return orjson.dumps(
        [
            _FORMAT,
            answer.backend,
            answer.body,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.cost_usd,
            answer.stored_at,
        ]
    )


def decode_answer(data: bytes | str) -> CachedAnswer | None:
    """The answer in an entry's bytes; None when they are not an entry of this layout. Each call gives a
    new ``body``, so a caller may change it."""
    try:
        layout, backend, body, prompt_tokens, completion_tokens, cost_usd, stored_at = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    if layout != _FORMAT or not isinstance(body, dict):
        return None
    return CachedAnswer(backend, body, prompt_tokens, completion_tokens, cost_usd, stored_at)


def entry_bytes(answer: CachedAnswer, max_entry_bytes: int) -> bytes | None:
    """``answer``'s entry bytes; None when they are over ``max_entry_bytes`` or not JSON-able (logged)."""
    try:
        data = encode_answer(answer)
    except TypeError as exc:  # orjson's JSONEncodeError: e.g. an integer beyond 64 bits
        logger.warning("response cache: an answer is not JSON-able (%s); not cached", type(exc).__name__)
        return None
    return data if len(data) <= max_entry_bytes else None


def check_indexing(group: str | None, vector: Vectors | None) -> None:
    """Raises ValueError unless ``group`` and ``vector`` are given together or not at all (a caller's bug)."""
    if (group is None) != (vector is None):
        raise ValueError("put: group and vector go together")
