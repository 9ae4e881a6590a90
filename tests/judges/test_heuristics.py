"""The cheap checks, alone and in front of another judge."""

import asyncio

import pytest

from routeyard.judges.heuristic_checks import HeuristicJudge, WithHeuristics, failed_check
from routeyard.judges.judge import Answer, Judgement


@pytest.mark.parametrize(
    ("answer", "check"),
    [
        (Answer(""), "empty"),
        (Answer("  \n\t "), "empty"),
        (Answer("The capital of France is", finish_reason="length"), "truncated"),
        (Answer("I'm sorry, but I can't help with that request."), "refusal"),
        (Answer("I’m sorry, but I cannot assist with this."), "refusal"),
        (Answer("As an AI language model, I cannot browse the internet."), "refusal"),
        (Answer("I cannot help with creating malware."), "refusal"),
        (Answer("I'm unable to help with that."), "refusal"),
        (Answer("Sorry, I can't do that."), "refusal"),
        (Answer("I can not provide that information."), "refusal"),
        (Answer("I can't answer definitively, but B is most likely."), None),
        (Answer("As an AI, I don't have opinions, but the answer is C."), None),
        (Answer("Paris is the capital of France.", finish_reason="stop"), None),
        (Answer("I'm sorry to hear that; here is how to fix the leak: turn off the valve."), None),
    ],
)
def test_each_check(answer, check):
    assert failed_check(answer) == check


def test_the_heuristic_judge_scores_pass_and_fail():
    judge = HeuristicJudge()
    assert asyncio.run(judge.judge("q", Answer("42"))).score == 1.0
    failed = asyncio.run(judge.judge("q", Answer("")))
    assert failed == Judgement(0.0, "answer is empty")


class CountingJudge:
    name = "counting"

    def __init__(self):
        self.calls = 0

    async def judge(self, prompt, answer):
        self.calls += 1
        return Judgement(0.7, "inner")


def test_with_heuristics_asks_the_inner_judge_only_when_the_checks_pass():
    inner = CountingJudge()
    judge = WithHeuristics(inner)
    assert judge.name == "heuristics+counting"
    assert asyncio.run(judge.judge("q", Answer("x", finish_reason="length"))).reason == "answer is truncated"
    assert inner.calls == 0
    assert asyncio.run(judge.judge("q", Answer("a fine answer"))).score == 0.7
    assert inner.calls == 1
