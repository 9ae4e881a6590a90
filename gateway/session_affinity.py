"""Session affinity: a multi-turn conversation stays on the backend first chosen for it.

A router may rank backends differently from one turn to the next (another w, pacing, exploration, a
reload); a conversation that bounces between models reads as one assistant changing its mind. So the
backend that answered a conversation is remembered, and its later turns go there first — unless that
backend is no longer in the router's ranking (the request excludes it, it cannot serve the request, the
key may not use it), or it fails, when the ranking's next backend answers and the conversation moves
there.

Which conversation a request belongs to (:func:`session_of`), first that applies:

1. ``routing.session``: the client names it (``source: session``);
2. the request's ``user`` (``source: user``);
3. a hash of the conversation's opening: its messages up to and including the first ``user`` one
   (``source: conversation``). Its later turns start with the same opening, however the client echoes
   the assistant's answers. A request with no earlier assistant turn starts a conversation: it is
   remembered, never steered.

Sessions are scoped to the client's key and the router, and stored as a SHA-256 (no prompt text): in
memory (:class:`InMemoryAffinityStore`, bounded, per process) or in Redis with ``redis_url``
(:class:`RedisAffinityStore`, ``SET <prefix>:affinity:<hash> <backend> EX <ttl>``, so replicas agree).
A session expires ``affinity_ttl_seconds`` after its last turn. A store failure never fails a request:
the turn is routed as if it had no session.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import orjson
import redis.asyncio as redis
from cachetools import TTLCache
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.gateway.outage_log import OutageLog
from routeyard.gateway.router import Decision
from routeyard.gateway.wire import ChatCompletionRequest

Source = Literal["session", "user", "conversation"]


@dataclass(frozen=True)
class Session:
    """The conversation a request belongs to: ``key`` (a SHA-256, scoped to the client and router), where
    it came from (``source``), and whether the request continues it (False: its first turn)."""

    key: str
    source: Source
    continues: bool


def session_of(request: ChatCompletionRequest, client: str | None, router: str) -> Session:
    """The session of ``request`` from the client with key id ``client``, routed by ``router`` (see the
    module docstring for the order)."""
    explicit = request.routing.session if request.routing is not None else None
    user = getattr(request, "user", None)
    source: Source
    if explicit is not None:
        source, identity, continues = "session", explicit, True
    elif isinstance(user, str) and user:
        source, identity, continues = "user", user, True
    else:
        source, identity = "conversation", _opening_digest(request)
        continues = any(m.role == "assistant" for m in request.messages)
    scoped = orjson.dumps([client or "", router, source, identity])
    return Session(hashlib.sha256(scoped).hexdigest(), source, continues)


def _opening_digest(request: ChatCompletionRequest) -> str:
    """A SHA-256 of the messages up to and including the first ``user`` message (all, if none is)."""
    opening: list[Any] = []
    for message in request.messages:
        opening.append([message.role, message.text()])
        if message.role == "user":
            break
    return hashlib.sha256(orjson.dumps(opening)).hexdigest()


class AffinityStore(Protocol):
    """Which backend each session is on."""

    async def backend_of(self, session: str) -> str | None:
        """The backend ``session`` is on, or None (unknown, expired, or the store failed)."""
        ...

    def remember(self, session: str, backend: str) -> None:
        """``session`` is on ``backend`` from now, for another TTL, written without waiting; a store
        failure is logged, not raised."""
        ...

    async def close(self) -> None:
        """Finish the writes in flight and let go of the store."""
        ...


class InMemoryAffinityStore:
    """One process's sessions: at most ``max_sessions`` (least recently used dropped first), each kept
    ``ttl_seconds`` after its last turn."""

    def __init__(self, ttl_seconds: float, max_sessions: int) -> None:
        self._backends: TTLCache[str, str] = TTLCache(max_sessions, ttl_seconds)

    async def backend_of(self, session: str) -> str | None:
        return self._backends.get(session)

    def remember(self, session: str, backend: str) -> None:
        self._backends[session] = backend

    async def close(self) -> None:
        return None


class RedisAffinityStore:
    """Every replica's sessions: ``<prefix>:affinity:<session>`` holds the backend, expiring
    ``ttl_seconds`` after its last turn. Sessions remembered are written together, at most every
    ``flush_seconds``, in one pipeline (a write per request would cost each request a round trip's CPU);
    until written they are read from this process. Calls wait at most ``timeout_seconds``; a failure is
    logged once until the store answers again, and a failed write is dropped (its session is routed
    afresh)."""

    def __init__(
        self,
        url: str,
        ttl_seconds: float,
        *,
        prefix: str = "routeyard",
        timeout_seconds: float = 0.25,
        flush_seconds: float = 0.05,
    ) -> None:
        self.prefix = prefix
        self.flush_seconds = flush_seconds
        self._ttl_ms = max(int(ttl_seconds * 1000), 1)
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._outages = OutageLog("session affinity", "routing without it")
        self._pending: dict[str, str] = {}
        self._flush: asyncio.Task[None] | None = None  # the write scheduled, until it starts
        self._writes: set[asyncio.Task[None]] = set()  # every write task not yet done

    async def backend_of(self, session: str) -> str | None:
        if (backend := self._pending.get(session)) is not None:
            return backend
        try:
            value = await self._client.get(self._key(session))
        except (redis.RedisError, OSError) as exc:
            self._outages.failed(exc)
            return None
        self._outages.answered()
        return value.decode() if isinstance(value, bytes) else value

    def remember(self, session: str, backend: str) -> None:
        self._pending[session] = backend
        if self._flush is None:
            self._flush = asyncio.create_task(self._write_soon())
            self._writes.add(self._flush)
            self._flush.add_done_callback(self._writes.discard)

    async def close(self) -> None:
        await asyncio.gather(*self._writes, return_exceptions=True)
        await self._write_pending()
        await self._client.aclose()

    async def _write_soon(self) -> None:
        await asyncio.sleep(self.flush_seconds)
        self._flush = None  # what is remembered from now on waits for the next write
        await self._write_pending()

    async def _write_pending(self) -> None:
        """Write every pending session in one pipeline (dropped if it fails)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for session, backend in pending.items():
                    pipe.set(self._key(session), backend, px=self._ttl_ms)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            self._outages.failed(exc)
            return
        self._outages.answered()

    def _key(self, session: str) -> str:
        return f"{self.prefix}:affinity:{session}"


@dataclass(frozen=True)
class Pinning:
    """What affinity did for one request: its ``session``, the backend the session was on (None: new or
    expired), and whether that backend was put first (``decided``)."""

    session: Session
    backend: str | None
    decided: bool

    def explained(self) -> dict[str, Any]:
        """The ``routing.affinity`` object: ``source``, ``backend`` (the session's, before this turn) and
        ``decided`` (True when affinity chose the backend; False when the router did, because the session
        is new or its backend is excluded or unavailable)."""
        return {"source": self.session.source, "backend": self.backend, "decided": self.decided}


class SessionAffinity:
    """Steers a session's turns to its backend (:meth:`pin`) and remembers who answered (:meth:`answered`),
    over ``store``."""

    def __init__(self, store: AffinityStore) -> None:
        self.store = store

    async def pin(self, session: Session, decision: Decision) -> tuple[Decision, Pinning]:
        """``decision`` with the session's backend first when the session continues, is on a backend,
        and that backend is in the ranking (so not excluded); else ``decision`` as it is."""
        backend = await self.store.backend_of(session.key) if session.continues else None
        if backend is None or backend not in decision.ranked:
            return decision, Pinning(session, backend, decided=False)
        ranked = (backend, *(b for b in decision.ranked if b != backend))
        return replace(decision, ranked=ranked), Pinning(session, backend, decided=True)

    def answered(self, session: Session, backend: str) -> None:
        """The session's turn was answered by ``backend``: remembered (TTL renewed), without waiting."""
        self.store.remember(session.key, backend)

    async def close(self) -> None:
        """Finish the writes in flight, then close the store."""
        await self.store.close()


def affinity_store(redis_url: str | None, ttl_seconds: float, max_sessions: int) -> AffinityStore:
    """Redis at ``redis_url`` when given (replicas agree), else one process's memory."""
    if redis_url:
        return RedisAffinityStore(redis_url, ttl_seconds)
    return InMemoryAffinityStore(ttl_seconds, max_sessions)
