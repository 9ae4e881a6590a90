"""Live AIQ: how a deployed policy does on production traffic, estimated from explored requests.

An *explored request* (issue 17) is a uniformly sampled request whose answer came from the backend the
policy chose, and for which one other candidate backend was also asked, chosen with a known probability
(its *propensity*); both answers were graded. From these, with bounded memory (sums only):

- each backend's mean quality and $ cost on this traffic, by inverse propensity weighting: over the
  explored requests where the backend was a candidate, the mean of ``outcome × observed / propensity``
  (the chosen backend is observed with propensity 1, the explored one with its propensity, the others
  not at all); unbiased whatever the policy, since every candidate has a known, positive chance of
  being observed. Its standard error is the terms' standard deviation over √n; the interval is ±1.96 se;
- the policy's own point: the mean quality and cost of what it chose (always observed);
- **AIQ with the replay's definition** (:mod:`routeyard.evaluation.aiq`): the Zero router's hull over
  the backends' estimated points, and the policy's hull of its one point, each averaged over the range
  [cheapest, dearest] backend's estimated mean cost; the policy's **regret** is the Zero hull's quality
  at the policy's cost minus the policy's quality (negative: it beats always calling one backend).

:class:`LiveTally` holds the sums (:meth:`~LiveTally.observe` one explored request; :meth:`~LiveTally.fields`
and :meth:`~LiveTally.from_fields` as a flat ``{name: float}`` mapping, so a Redis hash can hold it and
replicas add to it with ``HINCRBYFLOAT``); :func:`live_summary` turns it into the numbers. The gateway
tallies as it explores; ``routeyard replay --explored`` tallies an exported table of explored outcomes
with the same code, so the two agree.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from routeyard.evaluation.aiq import aiq
from routeyard.evaluation.hull import nondecreasing_hull

Z_95 = 1.959963984540054
"""The two-sided 95 % normal quantile of the intervals."""

POLICY = ""
"""The tally's name for the policy's own sums (no backend is called that: names are not empty)."""
_SEP = "/"
_SUMS = ("n", "q", "c", "qq", "cc")


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
        for backend, (quality, cost) in self.terms(backends, chosen, explored).items():
            self._add(backend, quality, cost)
        self._add(POLICY, chosen.quality, chosen.cost)

    @staticmethod
    def terms(
        candidates: list[str], chosen: ExploredAnswer, explored: ExploredAnswer
    ) -> dict[str, tuple[float, float]]:
        """Each candidate's inverse-propensity terms (quality, cost) for one request."""
        observed = {a.backend: a for a in (explored, chosen)}  # the choice wins if both name one backend
        terms = {}
        for backend in candidates:
            answer = observed.get(backend)
            if answer is None:
                terms[backend] = (0.0, 0.0)
            else:
                terms[backend] = (answer.quality / answer.propensity, answer.cost / answer.propensity)
        return terms

    def _add(self, name: str, quality: float, cost: float) -> None:
        sums = self.sums[name]
        for key, value in zip(_SUMS, (1.0, quality, cost, quality * quality, cost * cost), strict=True):
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
        _estimate(name, s) for name, s in sorted(tally.sums.items()) if name != POLICY and s["n"]
    )
    policy_sums = tally.sums.get(POLICY)
    policy = _estimate("policy", policy_sums) if policy_sums and policy_sums["n"] else None
    if policy is None or policy.quality.n < 2 or not backends:
        return LiveSummary(backends, policy, (math.nan, math.nan), math.nan, math.nan, math.nan)
    costs = [b.cost.mean for b in backends]
    low, high = min(costs), max(costs)
    zero = nondecreasing_hull(costs, [b.quality.mean for b in backends])
    mine = nondecreasing_hull([policy.cost.mean], [policy.quality.mean])
    regret = float(zero(policy.cost.mean)) - policy.quality.mean
    return LiveSummary(backends, policy, (low, high), aiq(zero, low, high), aiq(mine, low, high), regret)


def _estimate(name: str, sums: Mapping[str, float]) -> BackendEstimate:
    n = sums["n"]
    return BackendEstimate(name, _mean(n, sums["q"], sums["qq"]), _mean(n, sums["c"], sums["cc"]))


def _mean(n: float, total: float, squares: float) -> Estimate:
    mean = total / n
    variance = max(0.0, squares / n - mean * mean) * n / (n - 1) if n > 1 else math.inf
    return Estimate(mean, math.sqrt(variance / n), int(n))


def _zero_sums() -> dict[str, float]:
    return dict.fromkeys(_SUMS, 0.0)
