"""The static embedder: all-MiniLM-L6-v2 distilled into one vector per token, run with numpy alone.

A prompt's vector is the mean of its tokens' vectors, L2-normalised: no transformer runs, so a prompt
takes ≈ 0.1 ms instead of MiniLM's ≈ 8–14 ms on one thread (benchmarks/bench_embedders.py). The
token vectors were distilled from the bundled all-MiniLM-L6-v2 by model2vec
(``routeyard.predictor.static_distillation``, ``routeyard distill-embedder``) and ship with routeyard in
``static_model/`` (128 PCA dimensions in float16, 7.6 MB; provenance in ``static_model/PROVENANCE.md``).
The directory is an ordinary model2vec model: model2vec's ``StaticModel.from_pretrained(dir)`` loads
it, and so does sentence-transformers' ``StaticEmbedding.from_model2vec(dir)`` (same vectors), i.e. the
model is usable behind the sentence-transformers API.

Why 128 dimensions in float16: cross-validated inside the sample's train split, KNN routing scored
within noise of each other with 128, 256 or 384 dimensions, float16 or int8 (pooled CV AIQ 0.8060 –
0.8099, MiniLM 0.8066), so the size decided; the smallest, 128 in int8 (3.8 MB), loads in model2vec
but not in sentence-transformers 6.2's ``StaticEmbedding`` (no int8 torch parameters), so float16.

Loading needs ``model2vec`` and numpy only (no torch), and never a model hub: a directory that is
missing, or whose weights do not match its ``distillation.json``, is a :class:`StaticModelError`.

Truncation follows the project's convention (``routeyard.predictor.embedder``): a text longer than
``max_tokens`` tokens (default 256, MiniLM's window; no special tokens are added) keeps its *end*.
Keeping every token instead was not clearly better in the same cross-validation (pooled CV AIQ 0.8104
against 0.8089, within noise; test split 0.8050 against 0.8066), so the window stays;
``max_tokens=None`` keeps all.

The vectors are not interchangeable with MiniLM's: the identity names the source model, the
distillation (dims, dtype, the weights' SHA-256 prefix) and the window, so an artifact trained with
MiniLM refuses this embedder, and one trained with it refuses another distillation or window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from model2vec import StaticModel
from tokenizers import Encoding, Tokenizer

from routeyard.arrays import IndexArray, Vectors
from routeyard.predictor.embedder import normalise_rows
from routeyard.predictor.static_distillation import StaticModelError, read_record

SHIPPED_MODEL = Path(__file__).parent / "static_model"
"""The distillation that ships with routeyard (package data)."""
DEFAULT_MAX_TOKENS = 256


class StaticEmbedder:
    """Mean of token vectors of a distilled static model (see the module docstring)."""

    def __init__(
        self,
        directory: str | Path = SHIPPED_MODEL,
        *,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        threads: int | None = None,
    ) -> None:
        """Load the static model in ``directory`` (default: the shipped one).

        ``max_tokens`` keeps the last that many tokens of a text (``None``: all). ``threads=1`` tokenizes
        texts one by one in the calling thread; otherwise a batch is tokenized on the tokenizers
        library's thread pool. Either way the GIL is released while tokenizing. Raises
        :class:`StaticModelError` for a directory that is missing or not a routeyard distillation.
        """
        directory = Path(directory)
        record = read_record(directory)  # before model2vec: it would look a missing directory up on a hub
        model = StaticModel.from_pretrained(directory)
        window = "all" if max_tokens is None else f"left-truncated-{max_tokens}"
        self.identity = (
            f"{record.source_model}/model2vec-static-{record.dims}d-{record.dtype}-"
            f"{record.weights_sha256[:12]}/mean-pooled/normalised/{window}"
        )
        self.cache_key = f"{self.identity}|numpy"
        self.dimension = model.dim
        self._vectors = np.asarray(model.embedding)
        self._weights = None if model.weights is None else np.asarray(model.weights, dtype=np.float32)
        self._mapping = model.token_mapping
        self._unknown = model.unk_token_id
        self._tokenizer = Tokenizer.from_str(model.tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()  # model2vec's copy keeps the *first* 512 tokens
        if max_tokens is not None:
            self._tokenizer.enable_truncation(max_tokens, direction="left")
        self._one_by_one = threads == 1

    def embed(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dimension) float32 rows of norm 1; a text without known tokens (an empty one)
        gets the first basis vector."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, encoding in enumerate(self._encode(texts)):
            ids = [i for i in encoding.ids if i != self._unknown]
            if ids:
                vectors[row] = self._token_vectors(np.asarray(ids, dtype=np.intp)).mean(axis=0)
            if not vectors[row].any():
                vectors[row, 0] = 1.0
        return normalise_rows(vectors)

    def _encode(self, texts: Sequence[str]) -> list[Encoding]:
        # always encode_batch: it releases the GIL while it tokenizes (encode holds it, stalling a
        # gateway's event loop for the whole tokenization of a long prompt); one text per call keeps
        # the work on the calling thread, a whole batch spreads it over the tokenizers library's pool
        if self._one_by_one:
            return [self._tokenizer.encode_batch([text], add_special_tokens=False)[0] for text in texts]
        encodings: list[Encoding] = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return encodings

    def _token_vectors(self, ids: IndexArray) -> Vectors:
        """The (len(ids), dimension) float32 vectors of the tokens, as model2vec weighs them."""
        rows = ids if self._mapping is None else self._mapping[ids]
        vectors: Vectors = self._vectors[rows].astype(np.float32)
        if self._weights is not None:
            vectors *= self._weights[ids, None]
        return vectors


__all__ = ["SHIPPED_MODEL", "StaticEmbedder", "StaticModelError"]
