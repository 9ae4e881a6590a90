"""Plan outcomes: what every plan (``routeyard.policy.plans``) would have scored and cost on every prompt
of an outcome table, computed from the recorded answers.

An agreement pair's verdict on a prompt comes from the final answers extracted from the two recorded
responses (``routeyard.judges.answer_extraction``): equal → agree, different → disagree, either unknown
(free-form prose, code, no response) → cannot tell, where the fallback judge's verdict on the designated
answer decides: by default the heuristic checks (empty, refusal, truncated), the gateway's default
fallback, so what is replayed is what the plan router does. The result is a :class:`PlanTable`: an
ordinary outcome table whose columns are plans, so every predictor kind trains on it unchanged and the
willingness-to-pay rule chooses among plans exactly as it chooses among models.

:func:`candidate_plans` picks the plans from the rows it is given (the train split): every model alone,
and every pair of the other models with the better of the two (by mean quality on those rows) as the
designated answer, escalating to the best model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import BoolArray, IndexArray, ObjectArray
from routeyard.judges.answer_extraction import answers_agree, extract_answer
from routeyard.judges.heuristic_checks import failed_check
from routeyard.judges.judge import Answer
from routeyard.policy.plans import AgreementPlan, Plan, SinglePlan, agreement_outcome, keeps_first, verdict_of
from routeyard.predictor.outcome_table import OutcomeTable


@dataclass(frozen=True)
class PlanTable:
    """An outcome table over ``plans`` (its column ``j`` is ``plans[j]``, named ``plans[j].name``) built
    from a table over ``base_models``, the same rows in the same order."""

    table: OutcomeTable
    plans: tuple[Plan, ...]
    base_models: tuple[str, ...]


def candidate_plans(table: OutcomeTable, rows: IndexArray) -> tuple[Plan, ...]:
    """Every model alone, then every agreement pair of two models other than the best one on ``rows``,
    designated answer the better of the two on ``rows`` (ties: the cheaper), escalating to the best
    (highest mean quality, ties: the cheaper). Reads only ``rows`` of the table."""
    quality, cost = table.quality[rows].mean(axis=0), table.cost[rows].mean(axis=0)
    rank = np.lexsort((cost, -quality))  # best first
    best = int(rank[0])
    singles: list[Plan] = [SinglePlan(model) for model in table.models]
    others = sorted(int(j) for j in rank[1:])
    pairs: list[Plan] = []
    for a, b in itertools.combinations(others, 2):
        first, second = (a, b) if list(rank).index(a) < list(rank).index(b) else (b, a)
        pairs.append(AgreementPlan(table.models[first], table.models[second], table.models[best]))
    return (*singles, *pairs)


def plan_table(
    table: OutcomeTable, plans: tuple[Plan, ...], *, fallback_accepts: BoolArray | None = None
) -> PlanTable:
    """The outcomes of ``plans`` on every row of ``table``, which must hold its responses.

    ``fallback_accepts`` (n, m) is the fallback judge's verdict on each recorded answer, used where the
    agreement judge cannot tell; by default :func:`heuristic_acceptance`. A plan's quality is missing
    where the quality of the answer it keeps is. Raises ``ValueError`` for a table without responses or a
    plan naming a model the table lacks.
    """
    if table.responses is None:
        raise ValueError(f"{table.source}: plan outcomes need the recorded responses")
    column = {model: j for j, model in enumerate(table.models)}
    absent = {m for plan in plans for m in plan.models} - set(column)
    if absent:
        raise ValueError(f"plans name models the table lacks: {sorted(absent)}")
    answers = final_answers(table.responses)
    if fallback_accepts is None:
        fallback_accepts = heuristic_acceptance(table.responses)
    quality, cost, missing = [], [], []
    for plan in plans:
        if isinstance(plan, SinglePlan):
            j = column[plan.model]
            quality.append(table.quality[:, j])
            cost.append(table.cost[:, j])
            missing.append(table.missing[:, j])
            continue
        a, b, e = column[plan.first], column[plan.second], column[plan.escalate_to]
        kept = _kept_first(answers[:, a], answers[:, b], fallback_accepts[:, a])
        q, c = agreement_outcome(
            kept,
            (table.quality[:, a], table.cost[:, a]),
            table.cost[:, b],
            (table.quality[:, e], table.cost[:, e]),
        )
        quality.append(q)
        cost.append(c)
        missing.append(np.where(kept, table.missing[:, a], table.missing[:, e]))
    plan_outcomes = OutcomeTable(
        sample_ids=table.sample_ids,
        datasets=table.datasets,
        prompts=table.prompts,
        models=tuple(plan.name for plan in plans),
        quality=np.stack(quality, axis=1),
        missing=np.stack(missing, axis=1),
        cost=np.stack(cost, axis=1),
        repairs=table.repairs,
        source=f"{table.source} (plans)",
    )
    return PlanTable(plan_outcomes, plans, table.models)


def final_answers(responses: ObjectArray) -> ObjectArray:
    """(n, m) the :class:`FinalAnswer` (or ``None``) of each recorded response's last turn."""
    answers = np.empty(responses.shape, dtype=object)
    for index, response in np.ndenumerate(responses):
        answers[index] = extract_answer(response[-1]) if response else None
    return answers


def heuristic_acceptance(responses: ObjectArray) -> BoolArray:
    """(n, m) whether the heuristic checks (``routeyard.judges.heuristic_checks``) pass each recorded
    response's last turn; a missing response fails them."""
    accepted = np.zeros(responses.shape, dtype=bool)
    for index, response in np.ndenumerate(responses):
        accepted[index] = bool(response) and failed_check(Answer(response[-1])) is None
    return accepted


def _kept_first(first: ObjectArray, second: ObjectArray, fallback: BoolArray) -> BoolArray:
    """(n,) whether the pair keeps its designated answer, per prompt."""
    kept = np.zeros(len(first), dtype=bool)
    for i, (a, b) in enumerate(zip(first, second, strict=True)):
        kept[i] = keeps_first(verdict_of(answers_agree(a, b)), bool(fallback[i]))
    return kept
