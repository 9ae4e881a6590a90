"""LLM-as-judge: the grade is read robustly; a failed grading is a low, unconfident score, never a raise."""

import asyncio

import pytest

from routeyard.judges.chat_completer import TextReply
from routeyard.judges.judge import Answer
from routeyard.judges.kinds.llm import LlmJudge, grading_messages, parse_grade


class CannedGrader:
    """A fake upstream grader that answers a fixed text at $0.002 and remembers what it was asked."""

    name = "canned"

    def __init__(self, reply):
        self.reply = reply
        self.asked = []

    async def complete_text(self, messages):
        self.asked.append(messages)
        if isinstance(self.reply, Exception):
            raise self.reply
        return TextReply(self.reply, 0.002)


@pytest.mark.parametrize(
    ("reply", "grade"),
    [
        ("The answer is right.\nGRADE: 9", 0.9),
        ("grade: 10", 1.0),
        ('{"grade": 3}', 0.3),
        ("I'd say 7/10.", 0.7),
        ("4", 0.4),
        ("Scale is GRADE: 0 to 10. My verdict... GRADE: 6", 0.6),
        ("GRADE: 14", 1.0),
        ("GRADE: 7.5", 0.75),
        ("GRADE: -3", 0.0),
        ("Grade - 7", 0.7),
        ("I cannot grade this.", None),
        ("", None),
    ],
)
def test_grades_are_read_from_many_shapes_of_reply(reply, grade):
    assert parse_grade(reply) == (pytest.approx(grade) if grade is not None else None)


def test_the_judge_asks_with_question_and_answer_and_maps_the_grade():
    grader = CannedGrader("Correct.\nGRADE: 8")
    judgement = asyncio.run(LlmJudge(grader).judge("What is 2+2?", Answer("4")))
    assert judgement.score == pytest.approx(0.8) and judgement.confident
    assert (judgement.cost_usd, judgement.grader) == (0.002, "canned")  # what the grading cost, and whom
    (messages,) = grader.asked
    assert "What is 2+2?" in messages[-1]["content"] and "4" in messages[-1]["content"]
    assert messages == grading_messages("What is 2+2?", Answer("4"))


@pytest.mark.parametrize("reply", ["I'm sorry, I can't evaluate that.", "", "looks fine to me"])
def test_a_reply_without_a_grade_is_a_low_unconfident_score(reply):
    judgement = asyncio.run(LlmJudge(CannedGrader(reply)).judge("secret question", Answer("secret answer")))
    assert judgement.score == 0.0 and not judgement.confident
    assert "secret" not in judgement.reason
    assert judgement.cost_usd == 0.002  # a grading without a grade was still paid for


def test_a_grader_that_fails_is_a_low_unconfident_score():
    judgement = asyncio.run(LlmJudge(CannedGrader(ConnectionError("down"))).judge("q", Answer("a")))
    assert judgement.score == 0.0 and not judgement.confident
    assert judgement.reason == "grader failed (ConnectionError)"
