"""LLM-as-judge: ask a grading model for a grade from 0 to 10 and read it robustly.

The judge needs only a :class:`~routeyard.judges.chat_completer.ChatCompleter` — send chat messages, get
the reply's text and its $ cost — which the gateway provides over any of its backends (``judges`` does
not import ``gateway``); the kind ``llm`` grades through the backend its config names. The
judgement carries the grading's cost, so a cascade counts what its judge spent. The grading prompt
asks for a last line ``GRADE: <0-10>``; :func:`parse_grade` also reads ``7/10``, ``{"grade": 7}`` and a
bare number, and clamps to [0, 10]. A reply without a grade (a refusal, prose, nothing) or a completer
that raised is a failed judgement — score 0, not confident — never an exception.
"""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from pydantic import Field

from routeyard.judges.chat_completer import ChatCompleter
from routeyard.judges.judge import Answer, Judgement, failed_judgement
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, JudgeKind

GRADING_INSTRUCTIONS = (
    "You grade answers to questions. Judge only whether the answer is correct and complete for the "
    "question; ignore style. Think briefly if you need to, then end with one line exactly of the form "
    "'GRADE: <integer from 0 to 10>', where 10 means certainly correct and 0 certainly wrong."
)
_PATTERNS = (
    # GRADE: 7, "grade": 7, Grade - 7; lazy, so that "GRADE: -3" keeps its sign (and clamps to 0)
    re.compile(r"grade\W{0,3}?\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE),
    re.compile(r"(\d+(?:\.\d+)?)\s*/\s*10\b"),  # 7/10
    re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*$"),  # a bare number
)


def grading_messages(prompt: str, answer: Answer) -> list[dict[str, str]]:
    """The chat messages that ask for a grade of ``answer`` to ``prompt``."""
    question = f"Question:\n{prompt}\n\nAnswer to grade:\n{answer.text}\n\nGrade the answer."
    return [{"role": "system", "content": GRADING_INSTRUCTIONS}, {"role": "user", "content": question}]


def parse_grade(reply: str) -> float | None:
    """The grade in ``reply`` mapped to [0, 1] (0–10 scale, clamped), or None when there is none.

    The last ``GRADE:`` wins over earlier ones (a grader may quote the scale before grading).
    """
    for pattern in _PATTERNS:
        found = pattern.findall(reply)
        if found:
            return min(max(float(found[-1]), 0.0), 10.0) / 10.0
    return None


class LlmJudge:
    """Grades with the chat model behind ``completer`` (see the module docstring)."""

    def __init__(self, completer: ChatCompleter, *, name: str = "llm") -> None:
        self.completer = completer
        self.name = name

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        try:
            reply = await self.completer.complete_text(grading_messages(prompt, answer))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure of the grader is a failed grading, never the user's error
            return failed_judgement(f"grader failed ({type(exc).__name__})")
        cost, grader = reply.cost_usd, self.completer.name
        grade = parse_grade(reply.text)
        if grade is None:
            return Judgement(0.0, "grading reply had no grade", False, cost, grader)
        return Judgement(grade, f"graded {grade * 10:g}/10 by {self.name}", True, cost, grader)


class LlmJudgeConfig(JudgeConfig):
    """``kind: llm``: the gateway backend called ``backend`` grades each answer (and is paid for it)."""

    kind: Literal["llm"] = "llm"
    backend: str = Field(min_length=1)

    def problems(self, backends: set[str]) -> list[str]:
        """The grading backend must be one of ``backends``."""
        return [] if self.backend in backends else [f"backend {self.backend!r} is not a configured backend"]


def build_llm_judge(config: LlmJudgeConfig, context: JudgeContext) -> LlmJudge:
    """An LLM judge grading through ``context.completer(config.backend)`` (which raises ``ValueError``
    for an unknown backend), named ``llm:<backend>``."""
    return LlmJudge(context.completer(config.backend), name=f"llm:{config.backend}")


JUDGE_KINDS.register(JudgeKind("llm", LlmJudgeConfig, build_llm_judge))
