"""Cheap checks that reject an answer without asking anyone: empty, a refusal, or cut off by length.

:class:`HeuristicJudge` alone scores 1.0 when every check passes and 0.0 (naming the failed check)
otherwise. :class:`WithHeuristics` puts the checks in front of another judge, which is asked only when
they pass — a cascade then escalates past an empty or truncated answer without paying for a grading.
The judge kind ``heuristics`` (``routeyard.judges.kinds.heuristics``) is :class:`HeuristicJudge`.
"""

from __future__ import annotations

import re

from routeyard.judges.judge import Answer, Judge, Judgement

# Openers of the stock refusals of chat models, matched at the start of the answer (case-insensitive),
# unless the rest of that first sentence goes on with a "but" ("I can't be sure, but the answer is B").
_I_CANNOT = r"i(?:'m unable to| am unable to| can(?:no|')t| can not| won'?t)"
_REFUSAL = re.compile(
    rf"^\W*(?:(?:i'?m |i am )?sorry,? (?:but )?{_I_CANNOT}"
    rf"|{_I_CANNOT} (?:help|assist|provide|comply|do that|answer|fulfil)"
    rf"|as an ai(?: language model)?,? (?:{_I_CANNOT}|i do not|i don'?t)"
    rf"|i apologi[sz]e,? but {_I_CANNOT})"
    r"(?![^.!?\n]*\bbut\b)",
    re.IGNORECASE,
)


def failed_check(answer: Answer) -> str | None:
    """The name of the first check ``answer`` fails (``"empty"``, ``"truncated"``, ``"refusal"``), or None."""
    if not answer.text.strip():
        return "empty"
    if answer.finish_reason == "length":
        return "truncated"
    if _REFUSAL.match(answer.text.replace("’", "'")):
        return "refusal"
    return None


class HeuristicJudge:
    """1.0 when :func:`failed_check` finds nothing, else 0.0 with the check's name as the reason."""

    name = "heuristics"

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        check = failed_check(answer)
        return (
            Judgement(0.0, f"answer is {check}") if check else Judgement(1.0, "passes the heuristic checks")
        )


class WithHeuristics:
    """``inner``, asked only for answers that pass the heuristic checks."""

    def __init__(self, inner: Judge) -> None:
        self.inner = inner
        self.name = f"heuristics+{inner.name}"

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        check = failed_check(answer)
        if check:
            return Judgement(0.0, f"answer is {check}")
        return await self.inner.judge(prompt, answer)
