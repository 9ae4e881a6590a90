"""The ``agreement`` judge kind: an answer is good when an independent second answer says the same.

**Verdict** (:func:`pair_verdict`, the rule the replay scores in ``routeyard.evaluation.plan_outcomes``):
the final answers of both replies are extracted (``routeyard.judges.answer_extraction``) and compared;
equal → ``agree``, different → ``disagree``, either unknown (free-form prose, code, nothing
recognisable) or of different kinds → ``cannot_tell`` (``routeyard.policy.plans.verdict_of``).

**Judging a pair** (:func:`judge_pair`, what a plan router calls with the two answers it already has):
``agree`` scores the first answer 1.0, ``disagree`` 0.0, and ``cannot_tell`` hands the first answer to
the fallback judge, whose judgement (score, reason, cost) is taken. No call is made but the fallback's.

**As a cascade's judge** (:class:`AgreementJudge`): it asks the ``second`` backend the same prompt (as
one user message, through the judge context's completer), then judges the pair. The judgement's
``cost_usd`` is the second call's plus the fallback's, charged to the second backend (``grader``). When
the second call fails, the fallback judge decides alone (the reason says so); a fallback that raises is
a failed judgement (score 0). It never raises for a failed grading, and its reasons never quote the
prompt or an answer.

**Config** (:class:`AgreementJudgeConfig`): ``second`` (a backend name) and ``fallback`` (a judge config
of any kind, default ``heuristics``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, TypeAdapter, field_validator

from routeyard.judges.answer_extraction import answers_agree, extract_answer
from routeyard.judges.chat_completer import ChatCompleter
from routeyard.judges.judge import Answer, Judge, Judgement, failed_judgement
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, JudgeKind, build_judge
from routeyard.judges.kinds.heuristics import HeuristicsJudgeConfig
from routeyard.policy.plans import Verdict, verdict_of
from routeyard.registry import kind_union


def pair_verdict(first: str, second: str) -> Verdict:
    """Whether two reply texts give the same final answer: ``agree``, ``disagree`` or ``cannot_tell``."""
    return verdict_of(answers_agree(extract_answer(first), extract_answer(second)))


@dataclass(frozen=True)
class PairJudgement:
    """The verdict on a pair of answers and the resulting judgement of the first one."""

    verdict: Verdict
    judgement: Judgement


async def judge_pair(prompt: str, first: Answer, second: Answer, fallback: Judge) -> PairJudgement:
    """The judgement of ``first`` given ``second``, an independent answer to ``prompt`` (see the module
    docstring); never raises for a failed grading."""
    verdict = pair_verdict(first.text, second.text)
    if verdict == "agree":
        return PairJudgement(verdict, Judgement(1.0, "a second answer agrees"))
    if verdict == "disagree":
        return PairJudgement(verdict, Judgement(0.0, "a second answer disagrees"))
    judged = await judge_safely(fallback, prompt, first)
    reason = f"cannot tell if the answers agree; {fallback.name}: {judged.reason}"
    return PairJudgement(verdict, replace(judged, reason=reason))


async def judge_safely(judge: Judge, prompt: str, answer: Answer) -> Judgement:
    """``judge``'s judgement of ``answer``; a failed judgement if it raises (against its contract)."""
    try:
        return await judge.judge(prompt, answer)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken judge must not fail the user's request
        return failed_judgement(f"judge {judge.name} failed ({type(exc).__name__})")


class AgreementJudge:
    """Asks ``second`` for an independent answer and compares (see the module docstring); ``fallback``
    decides when the comparison cannot tell or the second call fails."""

    def __init__(self, second: ChatCompleter, fallback: Judge) -> None:
        self.second = second
        self.fallback = fallback
        self.name = f"agreement:{second.name}"

    async def judge(self, prompt: str, answer: Answer) -> Judgement:
        try:
            reply = await self.second.complete_text([{"role": "user", "content": prompt}])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no second answer: the fallback judges alone
            judged = await judge_safely(self.fallback, prompt, answer)
            reason = f"second answer failed ({type(exc).__name__}); {self.fallback.name}: {judged.reason}"
            return replace(judged, reason=reason)
        pair = await judge_pair(prompt, answer, Answer(reply.text, None, self.second.name), self.fallback)
        judged = pair.judgement
        return replace(judged, cost_usd=judged.cost_usd + reply.cost_usd, grader=self.second.name)


def _judge_config_by_kind(value: Any) -> Any:
    """``value`` (a mapping with a ``kind``) validated as that judge kind's config, by the kinds
    registered at validation time (this module cannot build the union when it is imported: it is one of
    the kinds being discovered); anything else is returned for pydantic to check. Raises pydantic's
    ``ValidationError`` (locations inside ``value``) for an unknown kind or a bad config."""
    if not isinstance(value, dict):
        return value
    configs = {kind.name: kind.config for kind in JUDGE_KINDS}
    return TypeAdapter(kind_union(configs, known=tuple(configs))).validate_python(value)


class AgreementJudgeConfig(JudgeConfig):
    """``kind: agreement``: the gateway backend called ``second`` answers each prompt again; ``fallback``
    (any judge kind) decides when the two answers cannot be compared."""

    kind: Literal["agreement"] = "agreement"
    second: str = Field(min_length=1, description="the backend that gives the independent second answer")
    fallback: SerializeAsAny[JudgeConfig] = Field(
        default_factory=HeuristicsJudgeConfig,
        description="the judge of the first answer when the agreement judge cannot tell",
    )

    @field_validator("fallback", mode="before")
    @classmethod
    def _fallback_by_kind(cls, value: Any) -> Any:
        return _judge_config_by_kind(value)

    def problems(self, backends: set[str]) -> list[str]:
        """The second backend must be one of ``backends``; the fallback's problems, prefixed."""
        second = [] if self.second in backends else [f"backend {self.second!r} is not a configured backend"]
        return second + [f"fallback {problem}" for problem in self.fallback.problems(backends)]


def build_agreement_judge(config: AgreementJudgeConfig, context: JudgeContext) -> AgreementJudge:
    """The agreement judge asking ``context.completer(config.second)`` (which raises ``ValueError`` for an
    unknown backend), with its fallback built by its own kind (``ValueError`` when it cannot be)."""
    return AgreementJudge(context.completer(config.second), build_judge(config.fallback, context))


JUDGE_KINDS.register(JudgeKind("agreement", AgreementJudgeConfig, build_agreement_judge))
