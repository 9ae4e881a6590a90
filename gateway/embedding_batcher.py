"""Micro-batching prompt embeddings, and the predictions made from them, off the event loop.

Embedding and predicting are CPU work: done on the event loop they would stall every connection.
Concurrent requests' texts are collected for at most ``window`` seconds (or until ``max_batch`` wait)
and handled in one call on a worker thread: the texts embedded together, then each predictor asked
once for all of its texts (:meth:`EmbeddingBatcher.predict`), so throughput rises with load and a
request pays one hop to a thread, not one per step. The window is waited only under load — when the
previous batch held more than one text or more texts are already queued: a lone request is handled at
once, since waiting for company that is not coming would be pure latency.

Tokenisation happens inside the embedder, on the worker thread. A repeated text's vector comes from a
bounded in-memory LRU of ``cache_size`` vectors, keyed by the text's SHA-256 (no prompt text is kept);
0 turns it off. The gateway never uses the on-disk cache of offline runs: it would grow by a row per new
prompt forever, and a disk error would fail requests.

Traced (a ``tracer`` given; ``routeyard.gateway.tracing``), the worker thread clocks each batch's
embedding and each predictor's call, and every request gets its own ``embed`` and ``predict`` spans
with those times (``routeyard.batch_size``: the texts handled together). Untraced, nothing is clocked.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from cachetools import LRUCache

from routeyard.arrays import Vectors
from routeyard.gateway.errors import EmbedderUnavailableError
from routeyard.gateway.tracing import Tracer
from routeyard.gateway.tracing.decision_spans import record_batch_spans
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.quality_predictor import QualityCostPrediction, QualityPredictor


@dataclass
class _Pending:
    """One text waiting: its ``vector`` when already known (a cache hit), the ``predictor`` to ask;
    traced, when its batch was embedded and predicted (``time.time_ns``, start and end) and its size."""

    text: str
    key: bytes
    predictor: QualityPredictor | None = None
    vector: Vectors | None = None
    prediction: QualityCostPrediction | None = None
    error: Exception | None = None
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    embedded_ns: tuple[int, int] | None = None
    predicted_ns: tuple[int, int] | None = None
    batch_size: int = 0


class EmbeddingBatcher:
    """``await batcher.embed(text)`` → (d,) float32 vector; ``await batcher.predict(text, predictor)`` →
    its one-row prediction. See the module docstring; ``tracer`` (None: untraced) is also the tracer of
    the routers built over this batcher."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        window: float = 0.002,
        max_batch: int = 32,
        cache_size: int = 4096,
        tracer: Tracer | None = None,
    ) -> None:
        self.embedder = embedder
        self.tracer = tracer
        self.window = window
        self.max_batch = max_batch
        self.batches = 0  # worker-thread calls made, for metrics and tests
        self._cache: LRUCache[bytes, Vectors] | None = LRUCache(cache_size) if cache_size > 0 else None
        self._last_batch_size = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def embed(self, text: str) -> Vectors:
        """The embedding of ``text``: the cached one, or computed in a batch with whatever else arrived
        meanwhile. Raises EmbedderUnavailableError (503) from what the embedder raised."""
        pending = _Pending(text, _key(text))
        if (cached := self._cached(pending.key)) is not None:
            return cached
        await self._handled(pending)
        assert pending.vector is not None
        return pending.vector

    async def predict(self, text: str, predictor: QualityPredictor) -> QualityCostPrediction:
        """``predictor``'s (1, m) prediction for ``text``, embedded (or cached) and predicted in a batch
        with the other texts for the same predictor. Raises EmbedderUnavailableError (503) from what the
        embedder or predictor raised."""
        key = _key(text)
        pending = _Pending(text, key, predictor, vector=self._cached(key))
        await self._handled(pending)
        assert pending.prediction is not None
        return pending.prediction

    async def close(self) -> None:
        """Stop the worker; pending callers get ``asyncio.CancelledError``."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    def _cached(self, key: bytes) -> Vectors | None:
        return None if self._cache is None else self._cache.get(key)

    async def _handled(self, pending: _Pending) -> None:
        """Queue ``pending``, wait until the worker handled it; raise its error; cache a new vector."""
        known = pending.vector is not None
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        assert self._queue is not None
        self._queue.put_nowait(pending)
        await pending.done
        if self.tracer is not None:
            record_batch_spans(
                self.tracer,
                embedded_ns=pending.embedded_ns,
                predicted_ns=pending.predicted_ns,
                batch_size=pending.batch_size,
                embedder=self.embedder.identity,
                error=pending.error,
            )
        if pending.error is not None:
            raise EmbedderUnavailableError(
                f"the prompt could not be embedded ({type(pending.error).__name__})"
            ) from pending.error
        if self._cache is not None and not known and pending.vector is not None:
            vector = pending.vector.copy()  # not a view that would keep its whole batch alive
            vector.flags.writeable = False  # shared by every later caller of this text
            self._cache[pending.key] = pending.vector = vector

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
            await self._handle_batch(batch)

    async def _handle_batch(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.done.cancelled()]
        if not live:
            return
        self.batches += 1
        try:
            await asyncio.to_thread(_work, self.embedder.embed, live, self.tracer is not None)
        except Exception as exc:  # a bug of ours: every caller's failure, never the worker's
            for pending in live:
                pending.error = pending.error or exc
        for pending in live:
            if not pending.done.done():
                pending.done.set_result(None)


def _work(embed: Callable[[list[str]], Vectors], batch: list[_Pending], timed: bool) -> None:
    """On the worker thread: embed the texts whose vector is unknown, then ask each predictor once for
    all of its texts. A failure becomes the ``error`` of the texts it concerns. ``timed``: each text
    notes when its batch was embedded and predicted, and the batch's size."""
    todo = [p for p in batch if p.vector is None]
    if todo:
        started = time.time_ns() if timed else 0
        try:
            vectors = np.asarray(embed([p.text for p in todo]))
            if vectors.ndim != 2 or len(vectors) != len(todo):
                raise ValueError(f"the embedder returned {vectors.shape} vectors for {len(todo)} texts")
        except Exception as exc:  # the embedder's failure is each of its callers' failure
            for pending in todo:
                pending.error = exc
        else:
            for pending, vector in zip(todo, vectors, strict=True):
                pending.vector = vector
        if timed:
            embedded = (started, time.time_ns())
            for pending in todo:
                pending.embedded_ns = embedded
    groups: dict[int, list[_Pending]] = {}
    for pending in batch:
        if pending.predictor is not None and pending.error is None:
            groups.setdefault(id(pending.predictor), []).append(pending)
    for group in groups.values():
        started = time.time_ns() if timed else 0
        _predict_group(group)
        if timed:
            predicted = (started, time.time_ns())
            for pending in group:
                pending.predicted_ns = predicted
    if timed:
        for pending in batch:
            pending.batch_size = len(batch)


def _predict_group(group: list[_Pending]) -> None:
    """One predictor's predictions for ``group`` (texts with vectors), one row each."""
    predictor = group[0].predictor
    assert predictor is not None
    try:
        prediction = predictor.predict(np.stack([p.vector for p in group if p.vector is not None]))
    except Exception as exc:  # the predictor's failure is its callers' failure
        for pending in group:
            pending.error = exc
        return
    for row, pending in enumerate(group):
        pending.prediction = QualityCostPrediction(
            quality=prediction.quality[row : row + 1], cost=prediction.cost[row : row + 1]
        )


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode(errors="surrogatepass")).digest()
