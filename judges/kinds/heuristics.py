"""The ``heuristics`` judge kind: only the cheap checks (empty, refusal, truncated) of
``routeyard.judges.heuristic_checks``; an answer passing all of them scores 1.0."""

from __future__ import annotations

from typing import Literal

from routeyard.judges.heuristic_checks import HeuristicJudge
from routeyard.judges.kinds import JUDGE_KINDS, JudgeConfig, JudgeContext, JudgeKind


class HeuristicsJudgeConfig(JudgeConfig):
    """``kind: heuristics``: no other field (``heuristics`` changes nothing: the checks are the judge)."""

    kind: Literal["heuristics"] = "heuristics"


def build_heuristic_judge(config: HeuristicsJudgeConfig, context: JudgeContext) -> HeuristicJudge:
    """The heuristic judge; never raises."""
    return HeuristicJudge()


JUDGE_KINDS.register(JudgeKind("heuristics", HeuristicsJudgeConfig, build_heuristic_judge))
