"""The agreement judge: does a second, independent answer agree? When it cannot tell, a fallback decides."""

import asyncio

import numpy as np
import pytest
from pydantic import ValidationError

from routeyard.evaluation.plan_outcomes import final_answers
from routeyard.judges.answer_extraction import answers_agree
from routeyard.judges.chat_completer import TextReply
from routeyard.judges.heuristic_checks import HeuristicJudge, WithHeuristics
from routeyard.judges.judge import Answer
from routeyard.judges.kinds import JUDGE_KINDS, JudgeContext, build_judge
from routeyard.judges.kinds.agreement import (
    AgreementJudge,
    AgreementJudgeConfig,
    judge_pair,
    pair_verdict,
)
from routeyard.judges.kinds.llm import LlmJudge, LlmJudgeConfig
from routeyard.policy.plans import verdict_of
from routeyard.predictor.hashing_embedder import HashingEmbedder

PROMPT = "Which option is right? A) 3 B) 4 C) 5"
PROSE = "Well, it depends on how you look at it; there are many views."


class Model:
    """A chat model outside routeyard: answers ``reply`` (or raises it) at ``cost`` $, counting calls."""

    def __init__(self, name, reply, cost=0.003):
        self.name, self.reply, self.cost = name, reply, cost
        self.asked = []

    async def complete_text(self, messages):
        self.asked.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        return TextReply(self.reply, self.cost)


def judged(judge, text):
    return asyncio.run(judge.judge(PROMPT, Answer(text, "stop", "cheap")))


def test_an_answer_the_second_model_agrees_with_scores_1_and_pays_the_second_call():
    second = Model("peer", "Answer: B")
    judgement = judged(AgreementJudge(second, HeuristicJudge()), "The answer is B.")
    assert (judgement.score, judgement.cost_usd, judgement.grader) == (1.0, 0.003, "peer")
    assert judgement.reason == "a second answer agrees"
    assert second.asked == [[{"role": "user", "content": PROMPT}]]  # the same prompt, nothing else


def test_an_answer_the_second_model_contradicts_scores_0():
    judgement = judged(
        AgreementJudge(Model("peer", "The correct option is (C)."), HeuristicJudge()), "The answer is B."
    )
    assert (judgement.score, judgement.cost_usd) == (0.0, 0.003)
    assert judgement.reason == "a second answer disagrees"  # never the answers themselves


def test_when_it_cannot_tell_the_fallback_decides_and_its_cost_is_added():
    grader = Model("grader", "GRADE: 3", cost=0.001)
    judge = AgreementJudge(Model("peer", "Answer: B"), LlmJudge(grader, name="llm:grader"))
    judgement = judged(judge, PROSE)
    assert judgement.score == pytest.approx(0.3)
    assert judgement.cost_usd == pytest.approx(0.004)  # the second answer and the grading
    assert judgement.reason == "cannot tell if the answers agree; llm:grader: graded 3/10 by llm:grader"
    assert len(grader.asked) == 1
    lenient = judged(AgreementJudge(Model("peer", "Answer: B"), HeuristicJudge()), PROSE)
    assert lenient.score == 1.0 and lenient.reason.startswith("cannot tell")


def test_a_failed_second_call_leaves_the_fallback_to_judge_alone():
    failing = Model("peer", ConnectionError("refused"))
    judgement = judged(AgreementJudge(failing, HeuristicJudge()), "The answer is B.")
    assert judgement.score == 1.0 and judgement.cost_usd == 0.0
    assert (
        judgement.reason == "second answer failed (ConnectionError); heuristics: passes the heuristic checks"
    )
    assert judged(AgreementJudge(failing, HeuristicJudge()), "").score == 0.0


class BuggyJudge:
    """A third-party judge that breaks the contract: it raises."""

    name = "buggy"

    async def judge(self, prompt, answer):
        raise RuntimeError("bug")


def test_a_fallback_that_raises_is_a_failed_judgement_not_an_error():
    judgement = judged(AgreementJudge(Model("peer", "Answer: B"), BuggyJudge()), PROSE)
    assert judgement.score == 0.0 and not judgement.confident
    assert "judge buggy failed (RuntimeError)" in judgement.reason


def test_judging_a_pair_already_answered_calls_nobody_but_the_fallback():
    grader = Model("grader", "GRADE: 8")
    fallback = LlmJudge(grader)
    agree = asyncio.run(judge_pair(PROMPT, Answer("B"), Answer("The answer is B"), fallback))
    disagree = asyncio.run(judge_pair(PROMPT, Answer("B"), Answer("The answer is D"), fallback))
    assert (agree.verdict, agree.judgement.score) == ("agree", 1.0)
    assert (disagree.verdict, disagree.judgement.score) == ("disagree", 0.0)
    assert grader.asked == []
    unclear = asyncio.run(judge_pair(PROMPT, Answer(PROSE), Answer("B"), fallback))
    assert unclear.verdict == "cannot_tell" and unclear.judgement.score == pytest.approx(0.8)
    assert len(grader.asked) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("The answer is B.", "Answer: (b)"),
        ("The answer is B.", "The answer is C."),
        ("#### 42", "So the final answer is 42.0"),
        ("#### 42", "The answer is 41"),
        (PROSE, "B"),
        ("def f(x):\n    return x", "def f(x):\n    return x"),
        ("Yes.", "No, because it rains."),
    ],
)
def test_the_live_verdict_is_the_one_the_replay_computes_from_recorded_answers(first, second):
    responses = np.empty((1, 2), dtype=object)
    responses[0, 0], responses[0, 1] = (first,), (second,)
    (recorded,) = final_answers(responses)
    assert pair_verdict(first, second) == verdict_of(answers_agree(recorded[0], recorded[1]))


def completer(name):
    if name not in ("peer", "grader"):
        raise ValueError(f"judge backend {name!r} is not a configured backend")
    return Model(name, "Answer: B" if name == "peer" else "GRADE: 9")


def test_the_agreement_kind_is_configured_with_a_second_backend_and_any_fallback_kind():
    assert "agreement" in JUDGE_KINDS.names()
    config = AgreementJudgeConfig.model_validate(
        {"second": "peer", "fallback": {"kind": "llm", "backend": "grader"}}
    )
    assert config.fallback == LlmJudgeConfig(backend="grader")
    assert AgreementJudgeConfig(second="peer").fallback.kind == "heuristics"
    judge = build_judge(config, JudgeContext(HashingEmbedder(), completer))
    assert isinstance(judge, WithHeuristics) and isinstance(judge.inner, AgreementJudge)
    assert judge.name == "heuristics+agreement:peer"
    assert asyncio.run(judge.judge(PROMPT, Answer(""))).reason == "answer is empty"  # no second call paid
    assert asyncio.run(judge.judge(PROMPT, Answer("B"))).score == 1.0


def test_an_agreement_configs_problems_name_its_backends_and_its_fallbacks():
    config = AgreementJudgeConfig.model_validate(
        {"second": "ghost", "fallback": {"kind": "llm", "backend": "phantom"}}
    )
    assert config.problems({"peer"}) == [
        "backend 'ghost' is not a configured backend",
        "fallback backend 'phantom' is not a configured backend",
    ]
    with pytest.raises(ValidationError, match="kind must be one of: agreement, heuristics, learned, llm"):
        AgreementJudgeConfig.model_validate({"second": "peer", "fallback": {"kind": "oracle"}})
    with pytest.raises(ValueError, match="'ghost' is not a configured backend"):
        build_judge(AgreementJudgeConfig(second="ghost"), JudgeContext(HashingEmbedder(), completer))
