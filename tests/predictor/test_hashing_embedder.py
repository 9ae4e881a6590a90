import numpy as np
import pytest

from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.hashing_embedder import HashingEmbedder


def test_vectors_are_unit_float32_rows_and_deterministic():
    texts = ["What is the capital of France?", "", "!!!", "a b c " * 500]
    vectors = HashingEmbedder(64).embed(texts)
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(vectors, HashingEmbedder(64).embed(texts))


def test_shared_words_are_closer_than_unrelated_text():
    a, b, c = HashingEmbedder().embed(
        ["the capital city of France", "which city is the capital of France", "def sort(xs): return xs"]
    )
    assert a @ b > a @ c + 0.3


def test_identity_names_the_dimension_and_bad_dimensions_are_refused():
    assert HashingEmbedder(128).identity != HashingEmbedder(256).identity
    with pytest.raises(ValueError, match="at least 2"):
        HashingEmbedder(1)


def test_turns_are_embedded_as_one_text_joined_by_a_blank_line():
    assert embedding_text(("first turn", "second turn")) == "first turn\n\nsecond turn"
