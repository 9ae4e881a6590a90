"""Micro-batching prompt embeddings off the event loop.

Embedding is CPU work: done on the event loop it would stall every connection. Concurrent requests'
texts are collected for at most ``window`` seconds (or until ``max_batch`` wait) and embedded in one
call on a worker thread, so throughput rises with load. The window is waited only under load — when
the previous batch held more than one text or more texts are already queued: a lone request at low load
is embedded at once, since waiting for company that is not coming would be pure latency.

The embedder runs on one worker thread, so tokenisation and the model never run on the event loop. A
repeated text is answered from a bounded in-memory LRU of ``cache_size`` vectors, keyed by the text's
SHA-256 (no prompt text is kept), on the event loop without a thread hop; 0 turns it off. The gateway
never uses the on-disk cache of offline runs: it would grow by a row per new prompt forever, and a disk
error would fail requests.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import Embedder


@dataclass
class _Pending:
    text: str
    done: asyncio.Future[Vectors] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class EmbeddingBatcher:
    """``await batcher.embed(text)`` → (d,) float32 vector; see the module docstring."""

    def __init__(
        self, embedder: Embedder, *, window: float = 0.002, max_batch: int = 32, cache_size: int = 4096
    ) -> None:
        self.embedder = embedder
        self.window = window
        self.max_batch = max_batch
        self.batches = 0  # embedding calls made, for metrics and tests
        self._cache: LRUCache[bytes, Vectors] | None = LRUCache(cache_size) if cache_size > 0 else None
        self._last_batch_size = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def embed(self, text: str) -> Vectors:
        """The embedding of ``text``: the cached one, or computed in a batch with whatever else arrived
        meanwhile."""
        key = hashlib.sha256(text.encode(errors="surrogatepass")).digest()
        if self._cache is not None and (vector := self._cache.get(key)) is not None:
            return vector
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        pending = _Pending(text)
        assert self._queue is not None
        self._queue.put_nowait(pending)
        vector = await pending.done
        if self._cache is not None:
            vector = vector.copy()  # not a view that would keep its whole batch alive
            vector.flags.writeable = False  # shared by every later caller of this text
            self._cache[key] = vector
        return vector

    async def close(self) -> None:
        """Stop the worker; pending callers get ``asyncio.CancelledError``."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            under_load = len(batch) > 1 or self._last_batch_size > 1
            deadline = asyncio.get_running_loop().time() + self.window
            while under_load and len(batch) < self.max_batch:
                timeout = deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except TimeoutError:
                    break
            self._last_batch_size = len(batch)
            await self._embed_batch(batch)

    async def _embed_batch(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.done.cancelled()]
        if not live:
            return
        self.batches += 1
        try:
            vectors = np.asarray(await asyncio.to_thread(self.embedder.embed, [p.text for p in live]))
            if vectors.ndim != 2 or len(vectors) != len(live):
                raise ValueError(f"the embedder returned {vectors.shape} vectors for {len(live)} texts")
        except Exception as exc:  # the embedder's failure is each caller's failure, never the worker's
            for pending in live:
                if not pending.done.done():
                    pending.done.set_exception(exc)
            return
        for pending, vector in zip(live, vectors, strict=True):
            if not pending.done.done():
                pending.done.set_result(vector)
