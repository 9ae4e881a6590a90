"""The quality of a backend's answer, in [0, 1]: by a reference answer, an LLM backend or a learned judge.

- :class:`ReferenceGrader`: 1.0 when the answer matches the reference, else 0.0. When the reference is a
  multiple-choice letter, a number, a yes/no or a short span (:func:`extract_answer`), the answer's final
  answer of that kind must equal it; otherwise the whole answer must equal the reference after
  normalisation (case, punctuation, articles and whitespace ignored).
- :class:`LlmGrader`: a configured backend grades the answer 0–10 with the LLM judge's request (the prompt
  and the answer fenced as data) and must end its reply with ``GRADE: n``; quality is n / 10. A reply
  without a grade is :class:`UngradableError`; the backend's own failures propagate (``UpstreamError``).
- :class:`LearnedJudgeGrader`: a learned-judge artifact (``routeyard train-judge``) scores the answer;
  quality is its score, P(quality ≥ ½), exactly what the judge gives the same answer recorded in a table
  (the prompt's turns embedded as one text, the answering backend as the model). Grading costs $0.
"""

from __future__ import annotations

import asyncio
import re
import string
import threading
from pathlib import Path
from typing import Protocol

from routeyard.gateway.backends.backend import Backend
from routeyard.gateway.collection.prompt_file import PromptRow
from routeyard.judges.answer_extraction import extract_answer
from routeyard.judges.judge import Answer
from routeyard.judges.kinds.learned import JudgeArtifactError, LearnedJudge, read_judge_manifest
from routeyard.judges.kinds.llm import grading_messages, parse_grade
from routeyard.predictor.embedder import Embedder, embedding_text
from routeyard.predictor.embedder_choice import make_embedder
from routeyard.predictor.hashing_embedder import HashingEmbedder


class UngradableError(Exception):
    """The grader's reply holds no grade."""


class Grader(Protocol):
    """Grades one answer to one prompt by the backend called ``model``; returns the quality in [0, 1] and
    the $ the grading cost."""

    async def grade(self, row: PromptRow, answer: str, model: str) -> tuple[float, float]: ...


class ReferenceGrader:
    """Quality 1 or 0 by the prompt's reference answer (see the module docstring); grading costs $0."""

    async def grade(self, row: PromptRow, answer: str, model: str) -> tuple[float, float]:
        return (1.0 if matches_reference(answer, row.reference or "") else 0.0), 0.0


def matches_reference(answer: str, reference: str) -> bool:
    """Whether ``answer`` gives the ``reference`` answer (see the module docstring)."""
    expected = extract_answer(reference)
    if expected is not None:
        given = extract_answer(answer, expect=expected.kind)
        return given is not None and given.value == expected.value
    return _normalised(answer) == _normalised(reference)


_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b")


def _normalised(text: str) -> str:
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


class LlmGrader:
    """Grades by asking ``backend``, with the LLM judge's request: the prompt and the answer fenced in
    random-boundary blocks as data, the verdict parsed strictly (``routeyard.judges.kinds.llm``)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def grade(self, row: PromptRow, answer: str, model: str) -> tuple[float, float]:
        prompt = "\n\n".join(f"{m['role']}: {m['content']}" for m in row.messages)
        messages = grading_messages(prompt, Answer(answer))
        reply = await self.backend.complete({"messages": messages, "temperature": 0})
        grade = parse_grade(reply_text(reply.body))
        if grade is None:
            raise UngradableError("the grader's reply does not end with 'GRADE: n'")
        return grade, reply.cost_usd


class LearnedJudgeGrader:
    """Grades with a :class:`LearnedJudge` (see the module docstring), one answer at a time off the event
    loop; the embedder is called from one thread at a time."""

    def __init__(self, judge: LearnedJudge) -> None:
        self.judge = judge
        self._lock = threading.Lock()

    async def grade(self, row: PromptRow, answer: str, model: str) -> tuple[float, float]:
        return await asyncio.to_thread(self._score, row, answer, model), 0.0

    def _score(self, row: PromptRow, answer: str, model: str) -> float:
        with self._lock:
            (score,) = self.judge.score_many([embedding_text(row.turns)], [Answer(answer, model=model)])
        return float(score)


def load_judge_grader(artifact: Path, embedder: str, cache_dir: Path) -> LearnedJudgeGrader:
    """The grader of the learned-judge artifact in ``artifact``; raises ``JudgeArtifactError`` (a
    ``ValueError`` naming the path) when it is missing, damaged or was trained with another embedder.

    The artifact names the embedder it was trained with: the hashing embedder is rebuilt from that name
    alone; any other is the embedder called ``embedder`` (the gateway config's, which serves the judge),
    uncached, whose identity must be the artifact's.
    """
    manifest = read_judge_manifest(artifact)
    dimension = manifest.dimension
    hashing = HashingEmbedder(dimension) if isinstance(dimension, int) and dimension >= 2 else None
    chosen: Embedder
    if hashing is not None and hashing.identity == manifest.embedder_identity:
        chosen = hashing
    else:
        chosen = make_embedder(embedder, cache_dir, cached=False, threads=1)
        if chosen.identity != manifest.embedder_identity:
            raise JudgeArtifactError(
                f"{artifact}: trained with embedder {manifest.embedder_identity!r}, but the config's "
                f"embedder {embedder!r} is {chosen.identity!r}; set `embedder:` in the config to the one "
                "the judge was trained with"
            )
    return LearnedJudgeGrader(LearnedJudge.load(artifact, chosen))


def reply_text(body: dict[str, object]) -> str:
    """The text of a completion's first choice ("" when it has none)."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return ""
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""
