import numpy as np

from routeyard.predictor.embedding_cache import CachedEmbedder
from routeyard.predictor.hashing_embedder import HashingEmbedder

TEXTS = ["a secret prompt about tax returns", "another prompt", "a secret prompt about tax returns"]


def test_each_text_is_embedded_once_and_vectors_are_exact(tmp_path):
    path = tmp_path / "cache.sqlite"
    inner = HashingEmbedder(32)
    first = CachedEmbedder(inner, path)
    vectors = first.embed(TEXTS)
    assert (first.misses, first.hits) == (2, 1)
    np.testing.assert_array_equal(vectors, inner.embed(TEXTS))

    again = CachedEmbedder(HashingEmbedder(32), path)  # a new process would see the same file
    np.testing.assert_array_equal(again.embed(TEXTS[::-1]), vectors[::-1])
    assert (again.misses, again.hits) == (0, 3)
    assert again.identity == inner.identity and again.dimension == 32


def test_embedders_sharing_a_file_do_not_see_each_others_vectors(tmp_path):
    path = tmp_path / "cache.sqlite"
    small, large = CachedEmbedder(HashingEmbedder(16), path), CachedEmbedder(HashingEmbedder(48), path)
    assert small.embed(TEXTS).shape == (3, 16)
    assert large.embed(TEXTS).shape == (3, 48) and large.misses == 2


def test_the_file_holds_no_prompt_text_and_empty_batches_work(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = CachedEmbedder(HashingEmbedder(32), path)
    cache.embed(TEXTS)
    assert b"secret prompt" not in path.read_bytes()
    assert cache.embed([]).shape == (0, 32)
