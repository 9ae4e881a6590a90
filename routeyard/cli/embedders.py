"""The embedder a command asked for, with the cache directory the environment names.

Cached vectors and ONNX exports live under ``$ROUTEYARD_CACHE_DIR`` (default ``~/.cache/routeyard``);
the names are those of :mod:`routeyard.predictor.embedder_choice`. :func:`embedding_progress` shows how
far a command's embedding got, for commands whose library code embeds without a bar of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tqdm import tqdm

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.embedder_choice import EMBEDDERS, make_embedder

__all__ = [
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
    "ProgressEmbedder",
    "cache_dir",
    "embedder_named",
    "embedding_progress",
]
DEFAULT_EMBEDDER = "minilm-static"


def cache_dir() -> Path:
    """Where embeddings and ONNX exports are cached."""
    return Path(os.environ.get("ROUTEYARD_CACHE_DIR", "~/.cache/routeyard")).expanduser()


def embedder_named(name: str, *, cached: bool = True) -> Embedder:
    """The embedder called ``name``, caching under :func:`cache_dir`."""
    return make_embedder(name, cache_dir(), cached=cached)


class ProgressEmbedder:
    """An embedder that advances a progress bar by every text it embeds; vectors, identity and cache key
    are the wrapped embedder's, so it trains and caches exactly as that one does."""

    def __init__(self, embedder: Embedder, bar: tqdm[None]) -> None:
        self.embedder, self.bar = embedder, bar
        self.identity, self.cache_key, self.dimension = (
            embedder.identity,
            embedder.cache_key,
            embedder.dimension,
        )

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = self.embedder.embed(texts)
        self.bar.update(len(texts))
        return vectors


@contextmanager
def embedding_progress(embedder: Embedder, total: int, *, description: str) -> Iterator[Embedder]:
    """``embedder`` showing, on a terminal only, a bar of the ``total`` texts a command will embed."""
    with tqdm(
        total=total, desc=description, unit="text", disable=not sys.stderr.isatty(), leave=False
    ) as bar:
        yield ProgressEmbedder(embedder, bar)
