"""``routeyard replay --pace TARGET``: the replay's willingness-to-pay routers, paced to spend targets.

A target is ``NN%`` (of always-<best model>'s spend per prompt on the streamed prompts; the best model is
the one of highest mean quality on the train split) or a $ amount per prompt (``$0.002`` or ``0.002``).
Every willingness-to-pay router the replay has (``wtp-<name>`` of ``--predictor``, ``--train`` and
``--predictions``; ``wtp-plan-<name>`` of ``--plans``; the config's willingness-to-pay routers, over the
columns each may choose) streams the test prompts of the replayed datasets once per target
(:func:`routeyard.evaluation.pacing.simulate_pacing`, seeded by ``--seed``), starting from the fixed w
that spends the target on the train split, w bounded to [1e-4, 1e3].
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routeyard.arrays import FloatArray, IndexArray
from routeyard.evaluation.deployed_routers import WillingnessToPayRouter
from routeyard.evaluation.pacing import best_fixed_w, model_spend_per_prompt, simulate_pacing
from routeyard.evaluation.plan_outcomes import PlanTable
from routeyard.evaluation.points import point_of_choice
from routeyard.evaluation.replayed_routers import DeployedRouter, Predictions
from routeyard.evaluation.report.pacing import PacedRouter, PacingReport
from routeyard.policy.pacing import PacingTuning
from routeyard.policy.willingness_to_pay import choose_by_willingness_to_pay
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset

W_MIN, W_MAX = 1e-4, 1e3


@dataclass(frozen=True)
class PaceTarget:
    """A spend target as given (``text``): a ``fraction`` of the reference model's spend per prompt, or
    ``usd_per_prompt``; exactly one is set, > 0 and finite."""

    text: str
    fraction: float | None = None
    usd_per_prompt: float | None = None

    def usd(self, reference_usd_per_prompt: float) -> float:
        """The target in $ per prompt where always calling the reference model spends the given $."""
        if self.fraction is not None:
            return self.fraction * reference_usd_per_prompt
        assert self.usd_per_prompt is not None  # pace_target sets one of the two
        return self.usd_per_prompt


def pace_target(text: str) -> PaceTarget:
    """``25%`` or ``$0.002`` / ``0.002`` as a :class:`PaceTarget`; ``argparse.ArgumentTypeError`` for
    anything else or an amount that is not a positive finite number."""
    stripped = text.strip()
    percent = stripped.endswith("%")
    number = stripped.removesuffix("%") if percent else stripped.removeprefix("$")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a spend target: give a positive percentage of the best model's spend "
            "per prompt (25%) or a $ amount per prompt ($0.002)"
        )
    if percent:
        return PaceTarget(stripped, fraction=value / 100.0)
    return PaceTarget(f"${value:g}", usd_per_prompt=value)


@dataclass(frozen=True)
class PacedCandidate:
    """A willingness-to-pay router to pace: its predictions and recorded outcomes over the columns it may
    choose, (N, k) each, for every row of the replayed table."""

    name: str
    predictions: Predictions
    quality: FloatArray
    cost: FloatArray


def paced_candidates(
    table: OutcomeTable,
    predictions: Sequence[Predictions],
    plans: PlanTable | None,
    plan_predictions: Sequence[Predictions],
    deployed: Sequence[DeployedRouter],
) -> list[PacedCandidate]:
    """Every willingness-to-pay router of the replay, named as its curve is. Raises ``ValueError`` when
    there is none."""
    out = [PacedCandidate(f"wtp-{p.name}", p, table.quality, table.cost) for p in predictions]
    if plans is not None:
        out += [
            PacedCandidate(f"wtp-plan-{p.name}", p, plans.table.quality, plans.table.cost)
            for p in plan_predictions
        ]
    for router in deployed:
        if isinstance(router, WillingnessToPayRouter):
            columns = np.flatnonzero(router.allowed)
            chosen = Predictions(
                router.predicted_quality[:, columns], router.predicted_cost[:, columns], router.name
            )
            out.append(
                PacedCandidate(router.name, chosen, router.quality[:, columns], router.cost[:, columns])
            )
    if not out:
        raise ValueError(
            "--pace needs a willingness-to-pay router: --predictor, --train, --predictions, or --config "
            "with a predictive or plan router"
        )
    return out


def paced_replay(
    table: OutcomeTable,
    candidates: Sequence[PacedCandidate],
    targets: Sequence[PaceTarget],
    *,
    seed: int,
    datasets: Sequence[str] | None,
) -> PacingReport:
    """Every candidate streamed over the test rows of ``datasets`` (default all; split with ``seed``) at
    every target."""
    splits = split_by_dataset(table, seed=seed)
    chosen = [s for name, s in splits.items() if name in (datasets or splits)]
    train = np.sort(np.concatenate([s.train for s in chosen]))
    test = np.sort(np.concatenate([s.test for s in chosen]))
    best = int(np.argmax(table.quality[train].mean(axis=0)))
    reference = model_spend_per_prompt(table.cost, test, best)
    reference_train = model_spend_per_prompt(table.cost, train, best)
    runs = []
    for candidate in candidates:
        for target in targets:
            start = _w_spending(candidate, train, target.usd(reference_train))
            tuning = PacingTuning(w_min=W_MIN, w_max=W_MAX, w_initial=start)
            run = simulate_pacing(
                candidate.quality,
                candidate.cost,
                candidate.predictions,
                test,
                target_usd_per_prompt=target.usd(reference),
                seed=seed,
                tuning=tuning,
            )
            runs.append(PacedRouter(candidate.name, target.text, run, _spend_at(candidate, test, W_MAX)))
    tuning = PacingTuning(w_min=W_MIN, w_max=W_MAX, w_initial=W_MIN)
    return PacingReport(table.models[best], reference, seed, len(test), tuning, tuple(runs))


def _w_spending(candidate: PacedCandidate, rows: IndexArray, budget: float) -> float:
    """The best fixed w spending at most ``budget`` per prompt on ``rows``, within [W_MIN, W_MAX]."""
    p = candidate.predictions
    arrays = (p.quality[rows], p.cost[rows], candidate.quality[rows], candidate.cost[rows])
    w = best_fixed_w(*arrays, budget_usd_per_prompt=budget).willingness_to_pay
    return float(np.clip(w, W_MIN, W_MAX))


def _spend_at(candidate: PacedCandidate, rows: IndexArray, w: float) -> float:
    """The mean recorded $ per prompt on ``rows`` of routing them at the fixed ``w``."""
    p = candidate.predictions
    choice = choose_by_willingness_to_pay(p.quality[rows], p.cost[rows], w)
    return point_of_choice(candidate.quality[rows], candidate.cost[rows], choice)[0]


def print_pacing(pacing: PacingReport) -> None:
    """One line per router and target: spend against target, quality against the best fixed w."""
    print(
        f"budget pacing over {pacing.n_prompts} test prompts (seed {pacing.seed}); % of always-"
        f"{pacing.reference_model} (${pacing.reference_usd_per_prompt:.6g}/prompt):"
    )
    for paced in pacing.runs:
        run, best = paced.run, paced.run.hindsight
        print(
            f"  {paced.router:<22} {paced.target:>8} (${run.target_usd_per_prompt:.6g}/prompt)  "
            f"spend/target {run.final_spend_ratio:.3f}  quality {run.mean_quality:.4f}  "
            f"best fixed w {best.willingness_to_pay:.3g}: {best.quality:.4f}  ratio {run.quality_ratio:.4f}"
            + (f"  (out of reach: at most {paced.reach_ratio:.3f})" if paced.reach_ratio < 1.0 else "")
        )
