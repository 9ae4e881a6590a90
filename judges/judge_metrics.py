"""How often a judge errs, measured against recorded quality labels.

The simulated judge of RouterBench flips a verdict with probability ε; a real judge's errors are
lopsided, so they are reported both ways at the cascade's threshold — false accepts (a bad answer let
through: quality lost) and false rejects (a good answer escalated: money lost) — with the overall error
rate, comparable to ε, and the threshold-free ROC AUC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from routeyard.arrays import BoolArray


@dataclass(frozen=True)
class JudgeErrorRates:
    """Error rates of a judge's scores at ``threshold`` over ``n`` answers, ``good`` of them good.

    ``false_accept_rate`` = accepted bad / bad, ``false_reject_rate`` = rejected good / good,
    ``error_rate`` = wrong verdicts / n; ``roc_auc`` is NaN when only one class is present.
    """

    threshold: float
    n: int
    good: int
    false_accept_rate: float
    false_reject_rate: float
    error_rate: float
    roc_auc: float


def judge_error_rates(scores: NDArray[np.floating], good: BoolArray, threshold: float) -> JudgeErrorRates:
    """The error rates of ``scores`` (n,) against the truth ``good`` (n,), accepting at score ≥ threshold."""
    scores, good = np.asarray(scores, dtype=np.float64), np.asarray(good, dtype=bool)
    if scores.shape != good.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {good.shape} must be the same (n,)")
    accepted = scores >= threshold
    n_good, n_bad = int(good.sum()), int((~good).sum())
    both_classes = n_good > 0 and n_bad > 0
    return JudgeErrorRates(
        threshold=threshold,
        n=len(scores),
        good=n_good,
        false_accept_rate=float((accepted & ~good).sum() / n_bad) if n_bad else math.nan,
        false_reject_rate=float((~accepted & good).sum() / n_good) if n_good else math.nan,
        error_rate=float((accepted != good).mean()) if len(scores) else math.nan,
        roc_auc=float(roc_auc_score(good, scores)) if both_classes else math.nan,
    )
