"""Which requests the response cache serves and keeps (:func:`requested_match`, :func:`uncacheable`),
under which keys (:func:`cache_query`), what a hit answers (:class:`CacheHit`), and :class:`ResponseCache`,
the cache the gateway calls, over a :class:`~routeyard.gateway.response_cache.store.ResponseCacheStore`
(the package docstring, ``routeyard.gateway.response_cache``, tells the whole story)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from routeyard.arrays import Vectors
from routeyard.gateway.backends.backend import Reply, Usage
from routeyard.gateway.errors import EmbedderUnavailableError
from routeyard.gateway.response_cache.store import CachedAnswer, ResponseCacheStore
from routeyard.gateway.wire import ChatCompletionRequest

Match = Literal["exact", "semantic"]
CACHE_HEADER = "x-routeyard-cache"
_NOT_KEYED = frozenset({"stream", "stream_options", "user", "routing", "messages"})
_ROUTING_KEYED = ("willingness_to_pay", "max_cost_usd", "min_quality", "exclude")


def requested_match(request: ChatCompletionRequest, default: str) -> Match | None:
    """The match ``request`` asks of the cache (None: none), from ``routing.cache`` or ``default``."""
    asked = request.routing.cache if request.routing is not None else None
    if asked is None:
        return None if default == "off" else default  # type: ignore[return-value]
    if asked is True:
        return "exact"
    return asked or None


def uncacheable(request: ChatCompletionRequest) -> str | None:
    """Why ``request``'s answer is not reused (its answer is not meant to be the same twice), or None."""
    extra = request.model_extra or {}
    if extra.get("tools") or extra.get("functions"):
        return "it offers tools"
    if (request.n or 1) != 1:
        return "it asks for more than one choice"
    if extra.get("temperature") != 0 and extra.get("seed") is None:
        return "it is not deterministic (temperature 0 or a seed is needed)"
    return None


@dataclass(frozen=True)
class CacheQuery:
    """Where ``request``'s answer is found and kept: its exact ``key``, its semantic ``group``, the
    ``match`` asked for, and (semantic) the prompt's unit ``vector`` once known."""

    key: str
    group: str
    match: Match
    vector: Vectors | None = None


def cache_query(request: ChatCompletionRequest, client: str | None, match: Match) -> CacheQuery:
    """The keys of ``request`` from the client with key id ``client`` (see the package docstring)."""
    body = request.model_dump(exclude_unset=True, mode="json")
    options = request.routing.model_dump() if request.routing is not None else {}
    shape = {
        "client": client,
        "parameters": {k: v for k, v in body.items() if k not in _NOT_KEYED},
        "routing": [options.get(name) for name in _ROUTING_KEYED],
    }
    group = hashlib.sha256(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)).hexdigest()
    messages = [_normalised(message) for message in body["messages"]]
    key = hashlib.sha256(orjson.dumps([group, messages], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return CacheQuery(key, group, match)


def _normalised(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with content given as text parts only written as their text, so both spellings of
    the same message share a key."""
    content = message.get("content")
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return {**message, "content": "\n".join(str(p.get("text", "")) for p in content)}
    return message


@dataclass(frozen=True)
class CacheHit:
    """A cached answer served: the ``answer``, how it matched, and (semantic) how close the prompts were."""

    answer: CachedAnswer
    match: Match
    similarity: float | None = None

    def reply(self) -> Reply:
        """The answer as a reply that cost nothing (no upstream was called; its usage is the answer's)."""
        usage = Usage(self.answer.prompt_tokens, self.answer.completion_tokens)
        return Reply(self.answer.body, usage, 0.0)

    def explained(self) -> dict[str, Any]:
        """The ``routing.cache`` object of a hit: ``hit``, ``match``, ``similarity`` (semantic), the answer's
        age in seconds, and the $ it cost when it was bought (``saved_usd``)."""
        return {
            "hit": True,
            "match": self.match,
            "similarity": round(self.similarity, 4) if self.similarity is not None else None,
            "age_seconds": round(max(time.time() - self.answer.stored_at, 0.0), 3),
            "saved_usd": self.answer.cost_usd,
        }


class ResponseCache:
    """Finds (:meth:`find`) and keeps (:meth:`keep`) answers in ``store``; ``embed`` gives a prompt's
    routing embedding for semantic matches (None, or an ``embed`` that answers None or cannot embed: a
    semantic match is an exact one); ``threshold`` is the semantic match's least cosine similarity."""

    def __init__(
        self,
        store: ResponseCacheStore,
        threshold: float,
        embed: Callable[[ChatCompletionRequest], Awaitable[Vectors | None]] | None = None,
    ) -> None:
        self.store = store
        self.threshold = threshold
        self.embed = embed
        self._writes: set[asyncio.Task[bool]] = set()

    async def find(
        self, query: CacheQuery, request: ChatCompletionRequest
    ) -> tuple[CacheHit | None, CacheQuery]:
        """The hit for ``query`` (exact first, then semantic when asked), or None; and ``query`` with the
        prompt's vector when a semantic match was looked for (to keep the answer under it)."""
        if (answer := await self.store.get(query.key)) is not None:
            return CacheHit(answer, "exact"), query
        if query.match != "semantic" or self.embed is None:
            return None, query
        try:
            embedded = await self.embed(request)
        except EmbedderUnavailableError:
            embedded = None
        if embedded is None:
            return None, query
        query = CacheQuery(query.key, query.group, query.match, embedded)  # the store normalises it
        found = await self.store.nearest(query.group, embedded, self.threshold)
        if found is None:
            return None, query
        answer, similarity = found
        return CacheHit(answer, "semantic", similarity), query

    def keep(self, query: CacheQuery, backend: str, reply: Reply) -> None:
        """Keep ``backend``'s ``reply`` under ``query`` (and its vector), without waiting."""
        answer = CachedAnswer(
            backend=backend,
            body={k: v for k, v in reply.body.items() if k != "routing"},
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens,
            cost_usd=reply.cost_usd,
            stored_at=time.time(),
        )
        vector = query.vector
        write = self.store.put(
            query.key, answer, group=query.group if vector is not None else None, vector=vector
        )
        task = asyncio.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def close(self) -> None:
        """Finish the writes in flight, then close the store."""
        await asyncio.gather(*self._writes, return_exceptions=True)
        await self.store.close()
