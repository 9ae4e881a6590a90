"""Texts that tell whether an embedder keeps the end of a long prompt (left truncation at 256 tokens)."""

SHARED_TAIL = " ".join(f"step {i}: add the numbers and carry the ones." for i in range(60))
"""Over 256 tokens on its own: behind it, a window that keeps the end sees nothing else."""
TWO_HEADS_ONE_TAIL = (
    "The first worked example. " * 20 + SHARED_TAIL,
    "A wholly other preamble! " * 20 + SHARED_TAIL,
)
"""Two long texts that differ only in their start."""


def heads_tail_and_short(embedder):
    """``embedder``'s vectors of the two :data:`TWO_HEADS_ONE_TAIL` texts and of a short one."""
    return embedder.embed([*TWO_HEADS_ONE_TAIL, "Hi."])
