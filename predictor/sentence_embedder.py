"""The sentence-transformers embedder: a local model (default all-MiniLM-L6-v2) on torch, CPU only.

The model is found by :func:`routeyard.predictor.embedding_model.locate_model` and loaded with
``local_files_only``, so nothing reaches a model hub. Texts longer than the model's window keep their end
(left truncation, see routeyard.predictor.embedder); vectors are the model's pooling, L2-normalised.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from sentence_transformers import SentenceTransformer

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import normalise_rows
from routeyard.predictor.embedding_model import DEFAULT_MODEL, locate_model

BATCH_SIZE = 64


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model on torch (see the module docstring)."""

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        """Load ``model``, the packaged name or a local directory; raises
        :class:`~routeyard.predictor.embedding_model.EmbeddingModelNotFoundError` when it is not on disk."""
        self.model = locate_model(model)
        with quiet_model_loading():
            self._transformer = SentenceTransformer(str(self.model.path), device="cpu", local_files_only=True)
        self._transformer.tokenizer.truncation_side = "left"
        self.identity = self.model.identity
        self.cache_key = f"{self.identity}|torch"
        self.dimension = self.model.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._transformer.encode(
            list(texts), batch_size=BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
        )
        return normalise_rows(vectors)


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """While a transformers model loads: no "Loading weights" progress bar and no load report (the
    packaged MiniLM's unused ``position_ids`` key is reported as a warning otherwise). Restores both."""
    from transformers.utils import logging as transformers_logging

    bars, verbosity = transformers_logging.is_progress_bar_enabled(), transformers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
