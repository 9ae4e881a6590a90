"""Prompts for load benchmarks that no cache can answer: every request carries a prompt never sent before.

Two length profiles (lengths in WordPiece tokens of the gateway's token estimate, tag included):

- ``short``: about 30 tokens: a request to explain one of a few subjects, :data:`SHORT_PROMPTS` of them.
- ``routerbench``: every prompt of the bundled RouterBench sample (real text: 5-shot arc-challenge ≈ 470
  tokens, winogrande ≈ 330, mbpp ≈ 17; median ≈ 340), in a seeded random order, so that the prompts of
  any prefix of the pool (what a short run sends) are a random draw from the sample's length distribution.

Why uniqueness holds at any request rate and for any duration: the pool is finite, but the first turn of
every prompt starts with :data:`PLACEHOLDER`, and the sender replaces it by a tag that was never used
before in this process, ``<run>.<thread>.<n>``: the load run's id (:func:`new_run_id`, counted per
process; every wrk invocation and every Python client loop takes a new one), the sending thread (wrk's
Lua thread, numbered from 1; 0 for a Python client) and that thread's request counter. wrk does the
substitution in its Lua script (``benchmarks/wrk_load.py``), a Python client with :func:`with_tag`. The
tag leads the prompt, so even an embedder that reads only the first 256 tokens sees a new text. A
cache-hit load sends one body whose placeholder was filled once (:func:`repeated_body`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np

from routeyard.demo.config import SAMPLE_TABLE
from routeyard.gateway.token_count import count_prompt_tokens
from routeyard.predictor.routerbench_format import load_routerbench_table

Profile = Literal["short", "routerbench"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
PLACEHOLDER = "<<unique>>"
"""Stands for the request's tag in a pooled body; JSON leaves it as it is, and no sample prompt holds it."""

Turns = tuple[str, ...]
ChatBody = dict[str, object]

SUBJECTS = (  # also the topics of benchmarks/bench_predict.py's prompts
    "the French revolution",
    "photosynthesis in desert plants",
    "sorting a linked list in place",
    "the tax rules for a small bakery",
    "why the sky looks blue at noon",
    "a haiku about autumn rain",
    "the difference between TCP and UDP",
    "how vaccines train the immune system",
)
_TASKS = (
    "Explain {} to a curious twelve-year-old in three short sentences.",
    "Summarise {} for a busy manager, with one concrete example.",
    "Give me two surprising facts about {}, and no jargon.",
    "Write a short quiz question about {} with its answer.",
)
SHORT_PROMPTS = len(SUBJECTS) * len(_TASKS)
_RUN_IDS = itertools.count(1)


def new_run_id() -> int:
    """A load run's id, never returned before in this process (1, 2, …)."""
    return next(_RUN_IDS)


def request_tag(run_id: int, thread: int, n: int) -> str:
    """The tag of request ``n`` (from 1) of ``thread`` in run ``run_id``; the wrk script builds the same."""
    return f"{run_id}.{thread}.{n}"


def short_prompts() -> list[Turns]:
    """The ``short`` pool: :data:`SHORT_PROMPTS` one-turn prompts of about 30 tokens, placeholder first."""
    return [(f"Request {PLACEHOLDER}: {task.format(subject)}",) for task in _TASKS for subject in SUBJECTS]


def routerbench_prompts(seed: int = 0) -> list[Turns]:
    """The ``routerbench`` pool: every prompt of the bundled sample, seeded shuffle, placeholder first."""
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=False)
    order = np.random.default_rng(seed).permutation(table.n_prompts)
    return [_tagged(tuple(table.prompts[row])) for row in order]


def prompt_pool(profile: Profile) -> list[Turns]:
    """The pool of ``profile`` (see the module docstring); raises ``ValueError`` for another name."""
    if profile == "short":
        return short_prompts()
    if profile == "routerbench":
        return routerbench_prompts()
    raise ValueError(f"unknown prompt profile {profile!r}; known: {', '.join(PROFILES)}")


def chat_bodies(model: str, prompts: Sequence[Turns]) -> list[ChatBody]:
    """One chat-completion body per prompt, each turn a user message."""
    return [
        {"model": model, "messages": [{"role": "user", "content": t} for t in turns]} for turns in prompts
    ]


def with_tag(body: ChatBody, tag: str) -> ChatBody:
    """``body`` with its placeholder replaced by ``tag`` (a copy; ``body`` is left as it is).

    Raises ValueError when the body holds no placeholder.
    """
    text = json.dumps(body)
    if PLACEHOLDER not in text:
        raise ValueError("the body holds no placeholder")
    filled: ChatBody = json.loads(text.replace(PLACEHOLDER, tag, 1))  # what the wrk script does too
    return filled


def repeated_body(model: str) -> ChatBody:
    """The one short body a cache-hit load sends again and again (no placeholder left)."""
    return with_tag(chat_bodies(model, short_prompts()[:1])[0], "cache-hit")


def prompt_tokens(turns: Turns, tag: str = request_tag(99, 1, 99_999)) -> int:
    """Estimated prompt tokens of ``turns`` once its placeholder is filled by a typical ``tag``."""
    return count_prompt_tokens((turns[0].replace(PLACEHOLDER, tag, 1), *turns[1:]))


def _tagged(turns: Turns) -> Turns:
    return (f"[{PLACEHOLDER}] {turns[0]}", *turns[1:])
