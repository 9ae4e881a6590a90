"""Estimating token counts when an upstream reports no usage.

Upstreams count tokens with their own tokenizers, which routeyard does not have offline. The estimate
uses the WordPiece tokenizer of the bundled embedding model: close to, not equal to, an upstream's count,
so every cost computed from it is flagged ``estimated``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from tokenizers import Tokenizer

from routeyard.predictor.embedding_model import DEFAULT_MODEL, locate_model

_PER_MESSAGE_OVERHEAD = 4  # role and separators, as chat formats add them


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(locate_model(DEFAULT_MODEL).path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def count_tokens(text: str) -> int:
    """Estimated tokens in ``text`` (without special tokens)."""
    return len(_tokenizer().encode(text, add_special_tokens=False).ids) if text else 0


def count_prompt_tokens(turns: Iterable[str]) -> int:
    """Estimated prompt tokens of a conversation given as turns of text."""
    return sum(count_tokens(turn) + _PER_MESSAGE_OVERHEAD for turn in turns)
