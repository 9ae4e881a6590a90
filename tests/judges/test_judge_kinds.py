"""Judge kinds through their registry: configs find what pydantic cannot see; builds wrap in heuristics."""

import asyncio
from dataclasses import dataclass

import pytest

from routeyard.judges.chat_completer import TextReply
from routeyard.judges.heuristic_checks import HeuristicJudge, WithHeuristics
from routeyard.judges.judge import Answer, Judgement
from routeyard.judges.judge_training import train_judge
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, JudgeKind, build_judge
from routeyard.judges.kinds.heuristics import HeuristicsJudgeConfig
from routeyard.judges.kinds.learned import LearnedJudge, LearnedJudgeConfig
from routeyard.judges.kinds.llm import LlmJudge, LlmJudgeConfig
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.registry import UnknownKindError
from tests.judges.test_learned_judge import answers_table


class Grader:
    """A grading chat model outside routeyard: always 8/10, named after the backend it stands for."""

    def __init__(self, name):
        self.name = name

    async def complete_text(self, messages):
        return TextReply("GRADE: 8", 0.001)


def completer(name):
    if name != "grader":
        raise ValueError(f"judge backend {name!r} is not a configured backend")
    return Grader(name)


@pytest.fixture(scope="module")
def context():
    return JudgeContext(HashingEmbedder(), completer)


@pytest.fixture(scope="module")
def judge_artifact(tmp_path_factory):
    directory = tmp_path_factory.mktemp("judge") / "learned"
    train_judge(answers_table(), HashingEmbedder(), regularisation=1.0).save(directory)
    return directory


def test_the_built_in_judge_kinds_are_registered():
    assert JUDGE_KINDS.names() == ("agreement", "heuristics", "learned", "llm")
    assert JUDGE_KINDS.get("llm").config is LlmJudgeConfig


def test_the_heuristic_judge_is_never_wrapped_in_itself(context):
    assert isinstance(build_judge(HeuristicsJudgeConfig(), context), HeuristicJudge)
    assert isinstance(build_judge(HeuristicsJudgeConfig(heuristics=False), context), HeuristicJudge)


def test_an_llm_judge_grades_through_the_named_backend_behind_the_checks(context):
    judge = build_judge(LlmJudgeConfig(backend="grader"), context)
    assert isinstance(judge, WithHeuristics) and isinstance(judge.inner, LlmJudge)
    assert judge.name == "heuristics+llm:grader"
    graded = asyncio.run(judge.judge("What is 2 plus 2?", Answer("4")))
    assert graded.score == pytest.approx(0.8) and graded.grader == "grader"
    assert asyncio.run(judge.judge("What is 2 plus 2?", Answer(""))).reason == "answer is empty"
    bare = build_judge(LlmJudgeConfig(backend="grader", heuristics=False), context)
    assert isinstance(bare, LlmJudge)
    with pytest.raises(ValueError, match="'ghost' is not a configured backend"):
        build_judge(LlmJudgeConfig(backend="ghost"), context)


def test_an_llm_judges_backend_must_be_configured():
    assert LlmJudgeConfig(backend="grader").problems({"grader"}) == []
    assert LlmJudgeConfig(backend="ghost").problems({"grader"}) == [
        "backend 'ghost' is not a configured backend"
    ]


def test_a_learned_judge_loads_its_artifact(context, judge_artifact):
    judge = build_judge(LearnedJudgeConfig(artifact=judge_artifact, heuristics=False), context)
    assert isinstance(judge, LearnedJudge) and judge.manifest.models == ("left", "right")
    assert LearnedJudgeConfig(artifact=judge_artifact).problems(set()) == []


def test_a_learned_judges_artifact_is_checked_without_loading_it(tmp_path):
    assert LearnedJudgeConfig(artifact=tmp_path / "missing").problems(set()) == [
        f"artifact {tmp_path / 'missing'} is not a directory"
    ]
    assert LearnedJudgeConfig(artifact=tmp_path).problems(set()) == [
        f"{tmp_path}: not a learned-judge artifact (no manifest.json)"
    ]
    (tmp_path / "manifest.json").write_text("{")
    assert LearnedJudgeConfig(artifact=tmp_path).problems(set()) == [
        f"{tmp_path / 'manifest.json'}: damaged manifest (JSONDecodeError)"
    ]


@dataclass
class ConstantJudge:
    score: float
    name: str = "constant"

    async def judge(self, prompt, answer):
        return Judgement(self.score, "constant")


class ConstantJudgeConfig(JudgeConfig):
    kind: str = "constant"
    score: float = 1.0


@pytest.fixture
def constant_kind():
    kind = JUDGE_KINDS.register(
        JudgeKind("constant", ConstantJudgeConfig, lambda c, _: ConstantJudge(c.score))
    )
    yield kind
    JUDGE_KINDS.unregister(kind.name)


def test_a_kind_registered_by_hand_is_built_like_the_built_in_ones(context, constant_kind):
    judge = build_judge(ConstantJudgeConfig(score=0.3), context)
    assert isinstance(judge, WithHeuristics) and judge.inner == ConstantJudge(0.3)
    with pytest.raises(
        UnknownKindError, match="unknown judge kind 'oracle'; known: agreement, constant, heuristics"
    ):
        build_judge(ConstantJudgeConfig(kind="oracle"), context)
