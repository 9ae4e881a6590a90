"""The Judge seam: how good is this answer to this prompt, as a score in [0, 1].

A cascade calls :meth:`Judge.judge` after each backend's answer and escalates while the score is below
its threshold. Contract for every judge:

- it never raises because grading went wrong (a grader that failed, refused or answered nonsense): that
  is ``Judgement(score=0.0, reason=…, confident=False)``, a low score, so the cascade escalates — the
  safe side, which costs money but never quality;
- ``reason`` is short and never quotes the prompt or the answer: it is logged and returned to clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Answer:
    """An answer to judge: its text, why generation stopped (OpenAI's ``finish_reason``), and which
    model gave it (a backend or model name; ``None`` when unknown)."""

    text: str
    finish_reason: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict: ``score`` in [0, 1] (higher is better), a short ``reason`` without prompt or
    answer text, and whether the judge could actually grade (``confident``). A judge that paid for its
    verdict (an LLM grader) says what it cost (``cost_usd``, $) and who charged it (``grader``)."""

    score: float
    reason: str
    confident: bool = True
    cost_usd: float = 0.0
    grader: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a judgement's score must be in [0, 1], got {self.score}")


def failed_judgement(reason: str) -> Judgement:
    """The judgement of a grading that went wrong: score 0 (escalate), not confident."""
    return Judgement(0.0, reason, confident=False)


class Judge(Protocol):
    """Scores answers (see the module docstring)."""

    name: str

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        """The judgement of ``answer`` to ``prompt``; never raises for a failed grading."""
        ...
