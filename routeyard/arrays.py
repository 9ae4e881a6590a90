"""The numpy array types every layer shares, named once (rows are prompts, columns models)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
"""Qualities, costs, scores: float64."""
BoolArray = NDArray[np.bool_]
"""Masks: missing qualities, allowed backends."""
IndexArray = NDArray[np.intp]
"""Row or column indices."""
ObjectArray = NDArray[np.object_]
"""Python objects: sample ids, prompts as turn tuples."""
Vectors = NDArray[np.float32]
"""(n, d) embeddings, L2-normalised rows."""
