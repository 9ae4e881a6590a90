"""The Embedder seam: prompts in, L2-normalised float32 vectors out.

Every embedder has an :attr:`Embedder.identity` saying what its vectors mean: two embedders with the
same identity produce interchangeable vectors (the torch and ONNX Runtime embedders of one model share
it), so a predictor artifact trained with one can serve with the other, and an artifact refuses an
embedder of another identity. The on-disk cache keys vectors by :attr:`Embedder.cache_key`, which also
names the implementation, so cached vectors are exactly what that embedder would compute.

Multi-turn prompts are embedded as one text, :func:`embedding_text`: the turns joined by a blank line.
Transformer embedders keep the *end* of a text that is longer than their window (left truncation):
the last turn holds the question, while the start of a long prompt is usually few-shot examples shared
by every prompt of a dataset (RouterBench's arc-challenge prompts are 5-shot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from routeyard.arrays import Vectors

TURN_SEPARATOR = "\n\n"


class Embedder(Protocol):
    """Turns texts into vectors.

    Attributes:
        identity: what the vectors mean (model and pooling); equal identity ⇒ interchangeable vectors.
        cache_key: identity plus the implementation, for caching exact vectors.
        dimension: d, the length of every vector.
    """

    identity: str
    cache_key: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dimension) float32, every row of L2 norm 1 (an empty text included)."""
        ...


def embedding_text(turns: Sequence[str]) -> str:
    """The one text a prompt of several turns is embedded as: the turns joined by a blank line."""
    return TURN_SEPARATOR.join(turns)


def normalise_rows(vectors: NDArray[np.floating]) -> Vectors:
    """Rows scaled to L2 norm 1 as float32; an all-zero row stays zero."""
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0.0, norms, 1.0)).astype(np.float32, copy=False)
