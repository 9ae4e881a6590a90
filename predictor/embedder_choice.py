"""Building an embedder by name, wrapped in the on-disk embedding cache.

Names: ``minilm`` (sentence-transformers all-MiniLM-L6-v2 on torch), ``minilm-onnx`` (the same model on
ONNX Runtime, exported on first use into ``cache_dir/onnx``; same identity, so artifacts serve with either)
and ``hashing`` (fast and meaningless, for smoke runs and tests). Vectors are cached in
``cache_dir/embeddings.sqlite`` unless ``cached`` is false.
"""

from __future__ import annotations

from pathlib import Path

from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedding_cache import CachedEmbedder
from routeyard.predictor.embedding_model import DEFAULT_MODEL
from routeyard.predictor.hashing_embedder import HashingEmbedder

EMBEDDERS = ("minilm", "minilm-onnx", "hashing")


def make_embedder(name: str, cache_dir: Path, *, cached: bool = True) -> Embedder:
    """The embedder called ``name`` (see the module docstring); raises ``ValueError`` for another name."""
    embedder: Embedder
    if name == "minilm":
        from routeyard.predictor.sentence_embedder import (
            SentenceTransformerEmbedder,  # torch loads only when asked
        )

        embedder = SentenceTransformerEmbedder()
    elif name == "minilm-onnx":
        from routeyard.predictor.onnx_embedder import OnnxEmbedder

        embedder = OnnxEmbedder(cache_dir / "onnx" / DEFAULT_MODEL)
    elif name == "hashing":
        embedder = HashingEmbedder()
    else:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}")
    return CachedEmbedder(embedder, cache_dir / "embeddings.sqlite") if cached else embedder
