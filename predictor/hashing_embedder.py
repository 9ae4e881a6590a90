"""A fast, dependency-free embedder for tests and smoke runs: signed feature hashing of words.

Words (lower-cased runs of letters and digits) and word pairs are hashed with BLAKE2b into ``dimension``
buckets with a ±1 sign, counted, and the vector L2-normalised. Texts sharing words land close; it knows
nothing of meaning, synonyms or languages. Deterministic across processes and machines.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import numpy as np

from routeyard.arrays import Vectors
from routeyard.predictor.embedder import normalise_rows

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Signed feature hashing of words and word pairs into ``dimension`` buckets (see module docstring)."""

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 2:
            raise ValueError(f"dimension must be at least 2, got {dimension}")
        self.dimension = dimension
        self.identity = f"hashing-words-bigrams/{dimension}"
        self.cache_key = self.identity

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in _features(text):
                digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
                vectors[row, digest % self.dimension] += 1.0 if digest >> 63 else -1.0
            if not vectors[row].any():  # no features, or features that cancel: still a unit vector
                vectors[row, 0] = 1.0
        return normalise_rows(vectors)


def _features(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
