"""Plan outcomes from recorded answers: what each plan would have scored and paid on every prompt."""

import numpy as np
import pytest

from routeyard.evaluation.plan_outcomes import candidate_plans, plan_table
from routeyard.policy.plans import AgreementPlan, SinglePlan
from routeyard.predictor.outcome_table import OutcomeTable

MODELS = ("cheap", "mid", "best")


def table_of(responses, quality, cost=(0.1, 0.2, 1.0)):
    n = len(responses)
    return OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["d"] * n),
        prompts=np.array([("q",)] * n + [None], dtype=object)[:n],
        models=MODELS,
        quality=np.array(quality, dtype=float),
        missing=np.zeros((n, 3), dtype=bool),
        cost=np.tile(np.array(cost), (n, 1)),
        responses=np.array(
            [[(text,) if text is not None else None for text in row] for row in responses] + [[None] * 3],
            dtype=object,
        )[:n],
    )


PAIR = AgreementPlan("mid", "cheap", "best")


def outcomes(table, plan=PAIR, **kwargs):
    result = plan_table(table, (SinglePlan("cheap"), plan), **kwargs)
    return result.table.quality[:, 1], result.table.cost[:, 1]


def test_an_agreeing_pair_keeps_the_designated_answer_and_pays_both():
    table = table_of([["The answer is B.", "B", "C"]], [[1.0, 0.0, 0.0]])
    quality, cost = outcomes(table)
    assert quality[0] == 0.0  # the designated (mid) answer's quality, not cheap's
    assert cost[0] == pytest.approx(0.3)


def test_a_disagreeing_pair_escalates_and_pays_all_three():
    table = table_of([["A", "Answer: B", "C"]], [[0.0, 0.0, 1.0]])
    quality, cost = outcomes(table)
    assert quality[0] == 1.0 and cost[0] == pytest.approx(1.3)


def test_when_it_cannot_tell_the_heuristic_fallback_decides():
    code = "def f(x):\n    return x + 1"
    table = table_of([[code, code, code], ["", "", code]], [[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    quality, cost = outcomes(table)
    assert cost[0] == pytest.approx(0.3)  # free-form but a real answer: kept
    assert quality[1] == 1.0 and cost[1] == pytest.approx(1.3)  # empty answer: escalated


def test_a_given_fallback_verdict_overrides_the_heuristics():
    code = "def f(x):\n    return x + 1"
    table = table_of([[code, code, code]], [[1.0, 1.0, 1.0]])
    _, cost = outcomes(table, fallback_accepts=np.zeros((1, 3), dtype=bool))
    assert cost[0] == pytest.approx(1.3)


def test_candidates_are_every_model_and_pairs_of_the_others_escalating_to_the_best():
    quality = [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    table = table_of([["A", "A", "A"]] * 3, quality)
    plans = candidate_plans(table, np.arange(3))
    assert plans == (SinglePlan("cheap"), SinglePlan("mid"), SinglePlan("best"), PAIR)


def test_candidates_read_only_the_rows_given():
    quality = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    table = table_of([["A", "A", "A"]] * 2, quality)
    for rows, best in ((np.array([0]), "cheap"), (np.array([1]), "best")):
        pair = candidate_plans(table, rows)[-1]
        assert isinstance(pair, AgreementPlan) and pair.escalate_to == best


def test_plan_outcomes_need_responses_and_known_models():
    table = table_of([["A", "A", "A"]], [[1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="lacks"):
        plan_table(table, (AgreementPlan("mid", "cheap", "gpt-9"),))
    bare = OutcomeTable(
        table.sample_ids, table.datasets, table.prompts, MODELS, table.quality, table.missing, table.cost
    )
    with pytest.raises(ValueError, match="responses"):
        plan_table(bare, (PAIR,))
