"""The micro-batcher: concurrent texts share embedding and prediction calls; a lone text does not wait."""

import asyncio

import numpy as np
import pytest

from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.errors import EmbedderUnavailableError
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.quality_predictor import QualityCostPrediction


def test_each_caller_gets_the_embedding_of_its_own_text():
    embedder = HashingEmbedder()
    texts = [f"question number {i}" for i in range(20)]

    async def embed_all():
        batcher = EmbeddingBatcher(embedder, window=0.05)
        vectors = await asyncio.gather(*[batcher.embed(t) for t in texts])
        await batcher.close()
        return vectors, batcher.batches

    vectors, batches = asyncio.run(embed_all())
    np.testing.assert_allclose(np.stack(vectors), embedder.embed(texts), rtol=1e-6)
    assert batches < len(texts)


def test_a_lone_request_is_not_held_back_by_a_long_window():
    async def lone():
        batcher = EmbeddingBatcher(HashingEmbedder(), window=600.0)
        try:
            # without load, the ten-minute window must not apply: answered long before the bound
            for text in ("first", "second", "third"):
                await asyncio.wait_for(batcher.embed(text), timeout=20.0)
        finally:
            await batcher.close()
        return batcher.batches

    assert asyncio.run(lone()) == 3


def test_an_embedder_failure_reaches_every_caller_and_the_batcher_keeps_working():
    class FailsOnce:
        identity, dimension, cache_key = "fails-once", 8, "fails-once"
        calls = 0

        def embed(self, texts):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("model crashed")
            return HashingEmbedder(8).embed(texts)

    async def run():
        batcher = EmbeddingBatcher(FailsOnce(), window=0.01)
        first = await asyncio.gather(batcher.embed("a"), batcher.embed("b"), return_exceptions=True)
        second = await batcher.embed("c")
        await batcher.close()
        return first, second

    first, second = asyncio.run(run())
    assert all(
        isinstance(r, EmbedderUnavailableError) and isinstance(r.__cause__, RuntimeError) for r in first
    )
    assert second.shape == (8,)


def test_an_embedder_returning_too_few_vectors_fails_its_callers_not_the_batcher():
    class DropsARow:
        identity, dimension, cache_key = "drops-a-row", 8, "drops-a-row"
        calls = 0

        def embed(self, texts):
            self.calls += 1
            vectors = HashingEmbedder(8).embed(texts)
            return vectors[:-1] if self.calls == 1 else vectors

    async def run():
        batcher = EmbeddingBatcher(DropsARow(), window=0.01)
        first = await asyncio.wait_for(asyncio.gather(batcher.embed("a"), return_exceptions=True), 10.0)
        second = await asyncio.wait_for(batcher.embed("c"), 10.0)
        await batcher.close()
        return first, second

    first, second = asyncio.run(run())
    assert isinstance(first[0], EmbedderUnavailableError) and isinstance(first[0].__cause__, ValueError)
    assert second.shape == (8,)


class CountingEmbedder:
    """HashingEmbedder that counts the texts it was asked to embed."""

    def __init__(self):
        self.inner = HashingEmbedder(16)
        self.identity, self.cache_key, self.dimension = "counting", "counting", 16
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_a_repeated_text_is_answered_from_memory_and_the_memory_is_bounded():
    embedder = CountingEmbedder()

    async def run():
        batcher = EmbeddingBatcher(embedder, cache_size=2)
        try:
            first = await batcher.embed("alpha")
            again = await batcher.embed("alpha")  # cached: not embedded twice
            await batcher.embed("beta")
            await batcher.embed("gamma")  # evicts alpha, the least recently used
            await batcher.embed("alpha")
        finally:
            await batcher.close()
        return first, again

    first, again = asyncio.run(run())
    np.testing.assert_array_equal(first, again)
    assert embedder.texts == 4  # alpha, beta, gamma, alpha again after its eviction
    assert not again.flags.writeable  # a caller cannot corrupt what later callers get


def test_with_no_cache_every_text_is_embedded():
    embedder = CountingEmbedder()

    async def run():
        batcher = EmbeddingBatcher(embedder, cache_size=0)
        try:
            for _ in range(3):
                await batcher.embed("same prompt")
        finally:
            await batcher.close()

    asyncio.run(run())
    assert embedder.texts == 3


class CountingPredictor:
    """A predictor whose quality for a text is its vector's first component; counts its calls."""

    kind: str = "counting"
    models: tuple[str, ...] = ("a", "b")
    dimension: int = 16

    def __init__(self, fails=False):
        self.calls, self.fails = 0, fails
        self.hyperparameters: dict[str, object] = {}

    def save(self, directory):
        raise NotImplementedError("never saved")

    def predict(self, embeddings):
        self.calls += 1
        if self.fails:
            raise RuntimeError("predictor crashed")
        first = np.asarray(embeddings, dtype=np.float64)[:, :1]
        return QualityCostPrediction(quality=np.hstack([first, -first]), cost=np.ones((len(first), 2)))


def test_concurrent_predictions_share_one_predictor_call_and_each_gets_its_own_row():
    embedder, predictor, other = HashingEmbedder(16), CountingPredictor(), CountingPredictor(fails=True)
    texts = [f"prompt number {i}" for i in range(12)]

    async def run():
        batcher = EmbeddingBatcher(embedder, window=0.05)
        try:
            mine = asyncio.gather(*[batcher.predict(t, predictor) for t in texts])
            broken = asyncio.gather(batcher.predict("x", other), return_exceptions=True)
            return await mine, await broken, batcher.batches
        finally:
            await batcher.close()

    predictions, (failure,), batches = asyncio.run(run())
    expected = embedder.embed(texts)[:, 0]
    for prediction, value in zip(predictions, expected, strict=True):
        assert prediction.quality.shape == prediction.cost.shape == (1, 2)
        assert prediction.quality[0, 0] == pytest.approx(value, rel=1e-6)
    assert predictor.calls == batches < len(texts)  # batched: one call per batch, not per text
    assert isinstance(failure, EmbedderUnavailableError)  # a failing predictor fails only its own callers
    assert isinstance(failure.__cause__, RuntimeError)
