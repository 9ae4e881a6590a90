"""Live AIQ: how a deployed policy does on production traffic, estimated from explored requests.

An *explored request* (issue 17) is a uniformly sampled request whose answer came from the backend the
policy chose, and for which one other candidate backend was also asked, chosen with a known probability
(its *propensity*); both answers were graded. From these, with bounded memory (sums only):

- each backend's mean quality and $ cost on this traffic, by inverse propensity weighting: over the
  explored requests where the backend was a candidate, each observed answer weighs 1 / its propensity
  (the chosen backend is observed with propensity 1, the explored one with its propensity, the others
  not at all), and the estimate is the weighted mean of the observed outcomes (the self-normalised,
  Hájek estimator: consistent whatever the policy, since every candidate has a known, positive chance
  of being observed, and, unlike the plain weighted sum over n, never outside [0, 1]). Its standard
  error is the delta method's, √(Σ w² (x − mean)²) / Σ w; the interval is ±1.96 se;
- the policy's own point: the mean quality and cost of what it chose (always observed);
- **AIQ with the replay's definition** (:mod:`routeyard.evaluation.aiq`): the Zero router's hull over
  the backends' estimated points, and the policy's hull of its one point, each averaged over the range
  [cheapest, dearest] backend's estimated mean cost; the policy's **regret** is the Zero hull's quality
  at the policy's cost minus the policy's quality (negative: it beats always calling one backend).

:class:`LiveTally` holds the sums (:meth:`~LiveTally.observe` one explored request; :meth:`~LiveTally.fields`
and :meth:`~LiveTally.from_fields` as a flat ``{name: float}`` mapping, so a Redis hash can hold it and
replicas add to it with ``HINCRBYFLOAT``); :func:`live_summary` turns it into the numbers. The gateway
tallies as it explores; ``routeyard replay --live`` tallies an exported table of explored answers
(:func:`tallies_of_rows`) with the same code, so the two agree.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.hull import nondecreasing_hull

Z_95 = 1.959963984540054
"""The two-sided 95 % normal quantile of the intervals."""

POLICY = ""
"""The tally's name for the policy's own sums (no backend is called that: names are not empty)."""
_SEP = "/"
_SUMS = ("n", "w", "wq", "wc", "ww", "wwq", "wwqq", "wwc", "wwcc")


@dataclass(frozen=True)
class ExploredAnswer:
    """One graded answer of an explored request: its ``backend``, ``quality`` in [0, 1], $ ``cost``, and
    the ``propensity`` (0, 1] with which this backend was observed (1 for the policy's choice)."""

    backend: str
    quality: float
    cost: float
    propensity: float = 1.0


@dataclass
class LiveTally:
    """Sums over explored requests, per backend and for the policy (see the module docstring)."""

    sums: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(_zero_sums))

    def observe(self, candidates: Iterable[str], chosen: ExploredAnswer, explored: ExploredAnswer) -> None:
        """Add one explored request: the backends that were ``candidates`` (the policy could have chosen
        any; the chosen and explored ones among them), what the policy ``chosen`` and the ``explored``
        answer. Raises ``ValueError`` for a propensity outside (0, 1] or a backend not a candidate."""
        backends = list(dict.fromkeys(candidates))
        for answer in (chosen, explored):
            if answer.backend not in backends or not 0.0 < answer.propensity <= 1.0:
                raise ValueError(f"backend {answer.backend!r}: not a candidate, or propensity not in (0, 1]")
        observed = {a.backend: a for a in (explored, chosen)}  # the choice wins if both name one backend
        for backend in backends:
            seen = observed.get(backend)
            if seen is None:
                self._add(backend, 0.0, 0.0, 0.0)
            else:
                self._add(backend, 1.0 / seen.propensity, seen.quality, seen.cost)
        self._add(POLICY, 1.0, chosen.quality, chosen.cost)

    def _add(self, name: str, weight: float, quality: float, cost: float) -> None:
        """One request where ``name`` was a candidate; its answer, if observed, weighs ``weight``."""
        w, ww = weight, weight * weight
        values = (1.0, w, w * quality, w * cost, ww, ww * quality, ww * quality**2, ww * cost, ww * cost**2)
        sums = self.sums[name]
        for key, value in zip(_SUMS, values, strict=True):
            sums[key] += value

    def fields(self) -> dict[str, float]:
        """The sums as ``{"<backend>/<sum>": value}``; :meth:`from_fields` reads it back."""
        return {
            f"{name}{_SEP}{key}": value for name, sums in self.sums.items() for key, value in sums.items()
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, float | str | bytes] | Mapping[bytes, bytes]) -> LiveTally:
        """The tally of :meth:`fields` (values may be Redis's strings or bytes); unknown keys are
        ignored."""
        tally = cls()
        for raw_key, value in fields.items():
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            name, sep, sum_name = key.rpartition(_SEP)
            if sep and sum_name in _SUMS:
                tally.sums[name][sum_name] = float(value)
        return tally


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` explored requests, its standard error and its 95 % interval."""

    mean: float
    stderr: float
    n: int

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - Z_95 * self.stderr, self.mean + Z_95 * self.stderr


@dataclass(frozen=True)
class BackendEstimate:
    """A backend's (or the policy's) estimated mean quality and $ cost per request on this traffic."""

    name: str
    quality: Estimate
    cost: Estimate


@dataclass(frozen=True)
class LiveSummary:
    """The live numbers of one router (see the module docstring); ``aiq``, ``zero_aiq`` and ``regret``
    are NaN until two requests were explored."""

    backends: tuple[BackendEstimate, ...]
    policy: BackendEstimate | None
    cost_range: tuple[float, float]
    zero_aiq: float
    aiq: float
    regret: float


def live_summary(tally: LiveTally) -> LiveSummary:
    """The estimates, AIQs and regret of ``tally``."""
    backends = tuple(
        _estimate(name, s) for name, s in sorted(tally.sums.items()) if name != POLICY and s["w"]
    )
    policy_sums = tally.sums.get(POLICY)
    policy = _estimate("policy", policy_sums) if policy_sums and policy_sums["w"] else None
    if policy is None or policy.quality.n < 2 or not backends:
        return LiveSummary(backends, policy, (math.nan, math.nan), math.nan, math.nan, math.nan)
    costs = [b.cost.mean for b in backends]
    low, high = min(costs), max(costs)
    zero = nondecreasing_hull(costs, [b.quality.mean for b in backends])
    mine = nondecreasing_hull([policy.cost.mean], [policy.quality.mean])
    regret = float(zero(policy.cost.mean)) - policy.quality.mean
    return LiveSummary(backends, policy, (low, high), aiq(zero, low, high), aiq(mine, low, high), regret)


def _estimate(name: str, sums: Mapping[str, float]) -> BackendEstimate:
    n, w, ww = int(sums["n"]), sums["w"], sums["ww"]
    quality = _weighted_mean(n, w, ww, sums["wq"], sums["wwq"], sums["wwqq"])
    return BackendEstimate(name, quality, _weighted_mean(n, w, ww, sums["wc"], sums["wwc"], sums["wwcc"]))


def _weighted_mean(n: int, w: float, ww: float, wx: float, wwx: float, wwxx: float) -> Estimate:
    """Σ w x / Σ w and its delta-method standard error √(Σ w² (x − mean)²) / Σ w (infinite from one
    observation: nothing says how it varies)."""
    mean = wx / w
    spread = max(0.0, wwxx - 2.0 * mean * wwx + mean * mean * ww)
    stderr = math.sqrt(spread) / w if ww < w * w else math.inf
    return Estimate(mean, stderr, n)


def _zero_sums() -> dict[str, float]:
    return dict.fromkeys(_SUMS, 0.0)


def tallies_of_rows(rows: Iterable[Mapping[str, object]]) -> dict[str, LiveTally]:
    """Each router's tally of exported explored answers (``routeyard export --explored``: one row per
    answer with ``sample_id``, ``dataset`` (the router), ``model``, ``quality`` (NaN: grading failed),
    ``cost``, ``chosen``, ``propensity`` and ``candidates`` (a JSON list)), two rows per request; a
    request whose answers are not one chosen and one other, or one of whose gradings failed, is skipped
    as the gateway skips it. Raises ``ValueError`` for a row that cannot be read."""
    by_request: dict[str, list[Mapping[str, object]]] = defaultdict(list)
    for row in rows:
        by_request[str(row["sample_id"])].append(row)
    tallies: dict[str, LiveTally] = defaultdict(LiveTally)
    for answers in by_request.values():
        chosen = [a for a in answers if int(str(a["chosen"])) == 1]
        others = [a for a in answers if int(str(a["chosen"])) == 0]
        if len(chosen) != 1 or len(others) != 1:
            continue
        pair = [_answer(chosen[0]), _answer(others[0])]
        if any(math.isnan(a.quality) for a in pair):
            continue
        candidates = json.loads(str(chosen[0]["candidates"]))
        tallies[str(chosen[0]["dataset"])].observe(candidates, pair[0], pair[1])
    return dict(tallies)


def _answer(row: Mapping[str, object]) -> ExploredAnswer:
    quality, cost, propensity = (float(str(row[key])) for key in ("quality", "cost", "propensity"))
    return ExploredAnswer(str(row["model"]), quality, cost, propensity)


def summary_as_dict(summary: LiveSummary) -> dict[str, Any]:
    """``summary`` as JSON-ready numbers (NaN and infinities as None), as ``/v1/stats`` and ``routeyard
    replay --live`` show it."""

    def estimate(e: Estimate) -> dict[str, Any]:
        low, high = e.interval
        return {"mean": _finite(e.mean), "low": _finite(low), "high": _finite(high), "n": e.n}

    def point(b: BackendEstimate) -> dict[str, Any]:
        return {"quality": estimate(b.quality), "cost_usd": estimate(b.cost)}

    return {
        "backends": {b.name: point(b) for b in summary.backends},
        "policy": None if summary.policy is None else point(summary.policy),
        "cost_range_usd": [_finite(c) for c in summary.cost_range],
        "aiq": _finite(summary.aiq),
        "zero_aiq": _finite(summary.zero_aiq),
        "regret": _finite(summary.regret),
    }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
