"""Building the embedder a command asked for, wrapped in the on-disk embedding cache.

Names: ``minilm`` (sentence-transformers all-MiniLM-L6-v2 on torch, the default), ``minilm-onnx`` (the
same model on ONNX Runtime, exported on first use; same identity, so artifacts serve with either) and
``hashing`` (fast and meaningless, for smoke runs). Cached vectors and ONNX exports live under
``$ROUTEYARD_CACHE_DIR`` (default ``~/.cache/routeyard``).
"""

from __future__ import annotations

import os
from pathlib import Path

from predictor.embedder import Embedder
from predictor.embedding_cache import CachedEmbedder
from predictor.hashing_embedder import HashingEmbedder

EMBEDDERS = ("minilm", "minilm-onnx", "hashing")
DEFAULT_EMBEDDER = "minilm"


def cache_dir() -> Path:
    """Where embeddings and ONNX exports are cached."""
    return Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()


def make_embedder(name: str, *, cached: bool = True) -> Embedder:
    """The embedder called ``name`` (see the module docstring); raises ``ValueError`` for another name."""
    embedder: Embedder
    if name == "minilm":
        from predictor.sentence_embedder import SentenceTransformerEmbedder  # torch loads only when asked

        embedder = SentenceTransformerEmbedder()
    elif name == "minilm-onnx":
        from predictor.onnx_embedder import OnnxEmbedder

        embedder = OnnxEmbedder(cache_dir() / "onnx" / "all-MiniLM-L6-v2")
    elif name == "hashing":
        embedder = HashingEmbedder()
    else:
        raise ValueError(f"unknown embedder {name!r}; known: {', '.join(EMBEDDERS)}")
    return CachedEmbedder(embedder, cache_dir() / "embeddings.sqlite") if cached else embedder
