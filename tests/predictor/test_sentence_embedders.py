"""The torch and ONNX Runtime embedders of all-MiniLM-L6-v2: meaning, truncation, parity, exports."""

import json
import shutil

import numpy as np
import pytest

from routeyard.predictor.embedding_model import EmbeddingModelNotFoundError, locate_model
from routeyard.predictor.onnx_embedder import (
    EXPORT_FILE,
    OnnxEmbedder,
    OnnxExportError,
    export_onnx,
    length_batches,
)
from routeyard.predictor.sentence_embedder import SentenceTransformerEmbedder
from tests.predictor.left_truncation import heads_tail_and_short

VARIED = [
    "What is 2+2?",
    "Summarise the causes of the French Revolution in three sentences.",
    "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    "Wie spät ist es gerade in Berlin, und welche Zeitzone gilt dort im Sommer?",
    "北京今天的天气怎么样？会下雨吗？",
    "ما هي عاصمة فرنسا؟",
    "",
    "Example: " + "a long few-shot example that repeats. " * 120 + "Question: why is the sky blue?",
    "x" * 3000,
]


@pytest.fixture(scope="module")
def torch_embedder():
    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return export_onnx("all-MiniLM-L6-v2", tmp_path_factory.mktemp("onnx") / "minilm")


@pytest.fixture(scope="module")
def onnx_embedder(export_dir):
    return OnnxEmbedder(export_dir)


def test_similar_meanings_land_closer_than_unrelated_ones(torch_embedder):
    cat, kitten, tax = torch_embedder.embed(
        ["The cat sat on the mat.", "A kitten was sitting on the rug.", "File your tax return by April."]
    )
    assert float(cat @ kitten) > float(cat @ tax) + 0.3
    assert torch_embedder.dimension == 384
    assert torch_embedder.identity == "all-MiniLM-L6-v2/mean-pooled/normalised/left-truncated-256"


def test_vectors_are_unit_length_float32_even_for_an_empty_text(torch_embedder):
    vectors = torch_embedder.embed(VARIED)
    assert vectors.dtype == np.float32 and vectors.shape == (len(VARIED), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert torch_embedder.embed([]).shape == (0, 384)


def test_long_texts_keep_their_end_so_different_question_heads_with_one_tail_embed_alike(torch_embedder):
    """Beyond 256 tokens only the end counts: the last turn, where the question is."""
    one, other, short = heads_tail_and_short(torch_embedder)
    assert float(one @ other) > 0.9999
    assert float(one @ short) < 0.5


def test_the_onnx_embedder_matches_torch_on_varied_prompts(torch_embedder, onnx_embedder):
    """Short, long (> 256 tokens), code, German, Chinese, Arabic and empty texts, batched and one by one."""
    expected = torch_embedder.embed(VARIED)
    batched = onnx_embedder.embed(VARIED)
    single = np.concatenate([onnx_embedder.embed([text]) for text in VARIED])
    assert (expected * batched).sum(axis=1).min() >= 0.9999
    assert (expected * single).sum(axis=1).min() >= 0.9999
    assert onnx_embedder.identity == torch_embedder.identity
    assert onnx_embedder.cache_key != torch_embedder.cache_key
    assert onnx_embedder.embed([]).shape == (0, 384)


def test_an_export_is_reused_and_a_missing_one_is_made_on_first_use(export_dir, tmp_path):
    before = (export_dir / "model.onnx").stat().st_mtime_ns
    OnnxEmbedder(export_dir)
    assert (export_dir / "model.onnx").stat().st_mtime_ns == before
    fresh = tmp_path / "cache" / "onnx"
    shutil.copytree(export_dir, fresh)  # a first use would export exactly this; copying saves 3 s
    (fresh / EXPORT_FILE).unlink()
    assert OnnxEmbedder(fresh, model="all-MiniLM-L6-v2").embed(["hello"]).shape == (1, 384)
    assert (fresh / EXPORT_FILE).exists()


def test_a_damaged_or_foreign_export_is_refused_clearly(export_dir, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(export_dir, damaged)
    (damaged / EXPORT_FILE).write_text("{not json")
    with pytest.raises(OnnxExportError, match="damaged or foreign ONNX export"):
        OnnxEmbedder(damaged)
    foreign = tmp_path / "foreign"
    shutil.copytree(export_dir, foreign)
    record = json.loads((foreign / EXPORT_FILE).read_text())
    (foreign / EXPORT_FILE).write_text(json.dumps({**record, "identity": "other-model/mean-pooled"}))
    with pytest.raises(OnnxExportError, match="not of 'all-MiniLM-L6-v2'"):
        OnnxEmbedder(foreign, model="all-MiniLM-L6-v2")
    (foreign / "model.onnx").unlink()
    with pytest.raises(OnnxExportError, match=r"lacks model\.onnx"):
        OnnxEmbedder(foreign)


def test_a_model_that_is_not_on_disk_says_how_to_provide_one(tmp_path):
    with pytest.raises(EmbeddingModelNotFoundError, match="never downloads models"):
        SentenceTransformerEmbedder("BAAI/bge-large-en")
    with pytest.raises(EmbeddingModelNotFoundError, match="not a sentence-transformers model directory"):
        locate_model(str(tmp_path))


def test_a_local_model_directory_loads_by_path_and_is_named_after_it(torch_embedder, tmp_path):
    local = tmp_path / "my-minilm"
    shutil.copytree(locate_model("all-MiniLM-L6-v2").path, local)
    embedder = SentenceTransformerEmbedder(str(local))
    assert embedder.identity == "my-minilm/mean-pooled/normalised/left-truncated-256"
    np.testing.assert_allclose(embedder.embed(VARIED[:3]), torch_embedder.embed(VARIED[:3]), atol=1e-6)


def test_onnx_batches_group_texts_of_similar_length_so_a_long_one_pads_no_short_one():
    lengths = [5, 300, 6, 7, 200, 4, 5, 250, 9, 5]
    batches = length_batches(lengths, 3)
    assert sorted(row for batch in batches for row in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert max(lengths[r] for r in batch) <= 2 * min(lengths[r] for r in batch)
