"""The gate of a hot reload: each router of a candidate config replayed against the serving one.

:func:`replayed_aiqs` replays a config's routers as deployed (``routeyard.gateway.deployed_replay``, what
``routeyard replay --config`` scores) on a table's test split and takes each router's pooled AIQ;
:func:`gate` compares candidate and current router by router: accepted when ``AIQ_candidate ≥
AIQ_current − tolerance``; a router with no current AIQ (new, or the serving one could not be replayed)
is accepted; a candidate router that cannot be replayed offline (an LLM grader) is accepted only when its
config is unchanged; a router the candidate drops is accepted. A :class:`ReloadVerdict` is accepted when
every router's :class:`RouterVerdict` is. ``routeyard.gateway.policy_reload`` runs the reload around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import ReplaySettings
from routeyard.gateway.deployed_replay import deployed_routers
from routeyard.gateway.routers import RouterConfig
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset


@dataclass(frozen=True)
class RouterVerdict:
    """One router's gate: its pooled AIQ serving now and in the candidate (None: none), and why."""

    router: str
    current_aiq: float | None
    candidate_aiq: float | None
    accepted: bool
    reason: str

    def body(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "current_aiq": _finite(self.current_aiq),
            "candidate_aiq": _finite(self.candidate_aiq),
            "accepted": self.accepted,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReloadVerdict:
    """A reload's outcome: ``accepted`` (and swapped) when every router's verdict is."""

    accepted: bool
    tolerance: float
    table: str
    routers: tuple[RouterVerdict, ...]
    not_reloaded: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        """The answer of ``POST /admin/reload``."""
        return {
            "object": "routeyard.reload",
            "verdict": "accepted" if self.accepted else "rejected",
            "accepted": self.accepted,
            "tolerance": self.tolerance,
            "table": self.table,
            "routers": [r.body() for r in self.routers],
            "not_reloaded": list(self.not_reloaded),
        }

    def summary(self) -> str:
        """One log line: the verdict and each router's AIQs (no prompt text)."""
        routers = ", ".join(
            f"{r.router} {_aiq(r.current_aiq)} -> {_aiq(r.candidate_aiq)}{'' if r.accepted else ' (worse)'}"
            for r in self.routers
        )
        return (
            f"reload {'accepted' if self.accepted else 'rejected'} (tolerance {self.tolerance:g}): {routers}"
        )


@dataclass(frozen=True)
class ReplayedAIQs:
    """A config's routers replayed: pooled AIQ by router, and the routers not replayable with why."""

    aiq: dict[str, float]
    skipped: dict[str, str]


def gate(
    current: ReplayedAIQs,
    candidate: ReplayedAIQs,
    current_configs: Sequence[RouterConfig],
    candidate_configs: Sequence[RouterConfig],
    tolerance: float,
) -> tuple[RouterVerdict, ...]:
    """Each router's verdict (the rule is the module docstring's step 3), candidate routers first, then
    the routers the candidate drops."""
    serving = {c.name: c for c in current_configs}
    verdicts = []
    for config in candidate_configs:
        name = config.name
        now, new = current.aiq.get(name), candidate.aiq.get(name)
        if name in candidate.skipped:
            unchanged = name in serving and serving[name] == config
            why = f"not replayable ({candidate.skipped[name]})"
            reason = f"{why}; unchanged" if unchanged else f"{why}: a changed router must be replayed"
            verdicts.append(RouterVerdict(name, now, None, unchanged, reason))
        elif now is None:
            verdicts.append(RouterVerdict(name, None, new, True, "no current AIQ (new, or not replayable)"))
        else:
            assert new is not None
            accepted = new >= now - tolerance  # False for NaN
            reason = f"AIQ {'≥' if accepted else '<'} current − tolerance"
            verdicts.append(RouterVerdict(name, now, new, accepted, reason))
    dropped = [name for name in serving if name not in {c.name for c in candidate_configs}]
    verdicts += [RouterVerdict(n, current.aiq.get(n), None, True, "removed") for n in dropped]
    return tuple(verdicts)


def replayed_aiqs(
    routers: Sequence[RouterConfig], backends: Sequence[str], table: OutcomeTable, embedder: Embedder
) -> ReplayedAIQs:
    """Each router of ``routers`` replayed as deployed on ``table``'s test split (judges scoring those
    rows), its pooled AIQ; raises ``ValueError`` for a router whose artifact does not fit."""
    settings = ReplaySettings(routers=("deployed",))
    splits = split_by_dataset(table, seed=settings.seed)
    rows = np.sort(np.concatenate([split.test for split in splits.values()]))
    deployment = deployed_routers(routers, backends, table, embedder, rows)
    if not deployment.routers:
        return ReplayedAIQs({}, deployment.skipped)
    report = replay(deployment.table, settings, deployed=deployment.routers)
    return ReplayedAIQs({r.curve.router: r.aiq for r in report.pooled.routers}, deployment.skipped)


def _aiq(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _finite(value: float | None) -> float | None:
    """``value``, or None for NaN (JSON has no NaN)."""
    return None if value is None or math.isnan(value) else value
