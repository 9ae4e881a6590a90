"""Building an embedder by name, wrapped in the on-disk embedding cache.

Names: ``minilm-static`` (all-MiniLM-L6-v2 distilled into static token vectors by model2vec, shipped
with routeyard: numpy only, ≈ 0.1 ms per short prompt), ``minilm`` (sentence-transformers
all-MiniLM-L6-v2 on torch), ``minilm-onnx`` (the same model on ONNX Runtime, exported on first use into
``cache_dir/onnx``; same identity as ``minilm``, so artifacts serve with either) and ``hashing`` (fast
and meaningless, for smoke runs and tests). Vectors are cached in ``cache_dir/embeddings.sqlite`` unless
``cached`` is false.
"""

from __future__ import annotations

from pathlib import Path

from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedding_cache import CachedEmbedder
from routeyard.predictor.embedding_model import DEFAULT_MODEL
from routeyard.predictor.hashing_embedder import HashingEmbedder

EMBEDDERS = ("minilm-static", "minilm", "minilm-onnx", "hashing")


def make_embedder(name: str, cache_dir: Path, *, cached: bool = True, threads: int | None = None) -> Embedder:
    """The embedder called ``name`` (see the module docstring); raises ``ValueError`` for another name.

    ``threads`` (≥ 1) caps the compute threads of the embedders that have a pool: ONNX Runtime's
    intra-op threads, torch's (``torch.set_num_threads``, process-wide), the static embedder's tokenizer
    (1: one text at a time in the calling thread). ``None`` leaves each library's default.
    """
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    embedder = _uncached(name, cache_dir, threads)
    return CachedEmbedder(embedder, cache_dir / "embeddings.sqlite") if cached else embedder


def _uncached(name: str, cache_dir: Path, threads: int | None) -> Embedder:
    if name == "minilm-static":
        from routeyard.predictor.static_embedder import StaticEmbedder  # model2vec loads only when asked

        return StaticEmbedder(threads=threads)
    if name == "minilm":
        import torch

        from routeyard.predictor.sentence_embedder import SentenceTransformerEmbedder  # torch: when asked

        if threads is not None:
            torch.set_num_threads(threads)
        return SentenceTransformerEmbedder()
    if name == "minilm-onnx":
        from routeyard.predictor.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(cache_dir / "onnx" / DEFAULT_MODEL, threads=threads)
    if name == "hashing":
        return HashingEmbedder()
    raise ValueError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}")
