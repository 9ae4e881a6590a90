"""Plans: what a plan router may do with one prompt, and the pure rule that settles an agreement pair.

A plan is one of:

- :class:`SinglePlan` — call one model and keep its answer;
- :class:`AgreementPlan` — call ``first`` and ``second`` concurrently (both are paid); when their final
  answers agree, keep ``first``'s (the *designated* answer); when they disagree, or the agreement judge
  cannot tell and its fallback rejects ``first``'s answer, call ``escalate_to`` and keep its answer.

Plans are named so a name reads as what it does: a single plan by its model, an agreement plan
``agree(first, second) else escalate_to``. A plan's :meth:`spec` is a JSON-ready dict (what an artifact's
manifest records) and :func:`plan_from_spec` reads one back. :func:`agreement_outcome` is the pair's
quality and cost from recorded outcomes, the rule both the replay harness and the gateway follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from routeyard.arrays import BoolArray, FloatArray

Verdict = Literal["agree", "disagree", "cannot_tell"]
"""What an agreement judge says of two answers."""


@dataclass(frozen=True)
class SinglePlan:
    """Call ``model`` alone."""

    model: str

    @property
    def name(self) -> str:
        return self.model

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the plan may call, in the order it may call them."""
        return (self.model,)

    def spec(self) -> dict[str, Any]:
        return {"kind": "single", "model": self.model}


@dataclass(frozen=True)
class AgreementPlan:
    """Call ``first`` and ``second`` together; keep ``first``'s answer when they agree, else escalate."""

    first: str
    second: str
    escalate_to: str

    def __post_init__(self) -> None:
        if len({self.first, self.second, self.escalate_to}) != 3:
            raise ValueError(f"an agreement plan needs three different models, got {self.models}")

    @property
    def name(self) -> str:
        return f"agree({self.first}, {self.second}) else {self.escalate_to}"

    @property
    def models(self) -> tuple[str, ...]:
        return (self.first, self.second, self.escalate_to)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "agreement",
            "first": self.first,
            "second": self.second,
            "escalate_to": self.escalate_to,
        }


Plan = SinglePlan | AgreementPlan


def plan_from_spec(spec: Mapping[str, Any]) -> Plan:
    """The plan a :meth:`spec` dict describes; raises ``ValueError`` for anything else."""
    try:
        if spec["kind"] == "single":
            return SinglePlan(str(spec["model"]))
        if spec["kind"] == "agreement":
            return AgreementPlan(str(spec["first"]), str(spec["second"]), str(spec["escalate_to"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a plan spec: {dict(spec)!r}") from exc
    raise ValueError(f"unknown plan kind {spec.get('kind')!r}")


def verdict_of(agree: bool | None) -> Verdict:
    """The verdict of an answer comparison: ``True`` agree, ``False`` disagree, ``None`` cannot tell."""
    return "cannot_tell" if agree is None else "agree" if agree else "disagree"


def keeps_first(verdict: Verdict, fallback_accepts: bool) -> bool:
    """Whether an agreement pair keeps its designated answer: on agreement, or when the judge cannot tell
    and the fallback judge accepts that answer; otherwise the plan escalates."""
    return verdict == "agree" or (verdict == "cannot_tell" and fallback_accepts)


def agreement_outcome(
    kept_first: BoolArray,
    first: tuple[FloatArray, FloatArray],
    second_cost: FloatArray,
    escalate_to: tuple[FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray]:
    """Quality and $ cost per prompt of an agreement pair, from recorded outcomes.

    Args:
        kept_first: (n,) whether the pair kept its designated answer (:func:`keeps_first`).
        first: (quality, cost) of the designated model, (n,) each.
        second_cost: (n,) the second model's cost (always paid).
        escalate_to: (quality, cost) of the escalation target, (n,) each.

    Returns:
        (quality, cost), (n,) each: the kept answer's quality; both calls, plus the escalation when taken.
    """
    quality = np.where(kept_first, first[0], escalate_to[0])
    cost = first[1] + second_cost + np.where(kept_first, 0.0, escalate_to[1])
    return quality, cost
