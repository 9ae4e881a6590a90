"""The embedder a command asked for, with the cache directory the environment names.

Cached vectors and ONNX exports live under ``$ROUTEYARD_CACHE_DIR`` (default ``~/.cache/routeyard``);
the names are those of :mod:`routeyard.predictor.embedder_choice`.
"""

from __future__ import annotations

import os
from pathlib import Path

from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedder_choice import EMBEDDERS, make_embedder

__all__ = ["DEFAULT_EMBEDDER", "EMBEDDERS", "cache_dir", "embedder_named"]
DEFAULT_EMBEDDER = "minilm-static"


def cache_dir() -> Path:
    """Where embeddings and ONNX exports are cached."""
    return Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()


def embedder_named(name: str, *, cached: bool = True) -> Embedder:
    """The embedder called ``name``, caching under :func:`cache_dir`."""
    return make_embedder(name, cache_dir(), cached=cached)
