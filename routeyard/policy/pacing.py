"""Budget pacing: a feedback controller that steers the willingness to pay w so spend tracks a target rate.

The controller keeps the *deficit* D: the target spend so far minus the actual spend so far, in $
(positive: under budget). Each update adds ``target × elapsed − spent`` to it and sets

    log w = log w_initial + kp · e + ki · I,   e = D / (target × response_seconds),
    I += e · elapsed / response_seconds

— a PI controller on log w whose error is the deficit measured in response times' worth of budget.
Because the error is the *integral* of the spend-rate error, the P term already pulls the cumulative spend
back to the cumulative target, and the I term finds the w that spends at the target rate, so the deficit
goes back to 0 rather than to a constant offset. With γ = d log(spend rate) / d log w near w*, the loop is
the second-order system τ²e'' + γ·kp·τ·e' + γ·ki·e = 0 (τ = ``response_seconds``): the defaults kp = 2,
ki = 1 give a damping ratio of √γ, 0.7 to 1 for the elasticities (0.5 to 1) a routing table shows, and a
settling time of a few τ.

Bounds and anti-windup: w is clipped to [w_min, w_max]; while it sits on a bound and the error pushes
further out, I is not integrated (conditional integration), so it never winds up; |D| is capped at
``deficit_cap`` response times' worth of budget, so a long idle period (no spend, time passing) or a
burst is forgiven beyond that rather than repaid all at once.

Time is whatever clock the caller advances, in seconds: the gateway passes wall-clock seconds between
updates; a simulation passes a virtual clock (one prompt per second makes the target a $ per prompt and
``response_seconds`` a number of prompts). The state is a small dataclass of floats (:class:`PacingState`,
``to_dict`` / ``from_dict``) so replicas can share it; :meth:`PacingController.update` is pure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class PacingTuning:
    """How a pacing controller reacts, independent of the target.

    ``w_min`` ≤ ``w_initial`` ≤ ``w_max``, all in (0, inf): the bounds of w and where it starts ($ per
    unit of quality); ``response_seconds`` τ > 0: the time over which a deficit is corrected (the default,
    50, is 50 prompts on a simulation's one-prompt-per-second clock; a gateway pacing an hourly target
    wants minutes); ``proportional_gain`` kp ≥ 0 and ``integral_gain`` ki ≥ 0 (module docstring);
    ``deficit_cap`` > 0, in response times' worth of budget. Raises ``ValueError`` otherwise.
    """

    w_min: float = 1e-4
    w_max: float = 10.0
    w_initial: float = 0.03
    response_seconds: float = 50.0
    proportional_gain: float = 2.0
    integral_gain: float = 1.0
    deficit_cap: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 < self.w_min <= self.w_initial <= self.w_max < math.inf:
            raise ValueError(f"need 0 < w_min ≤ w_initial ≤ w_max < inf, got {self}")
        if not self.response_seconds > 0.0 or not self.deficit_cap > 0.0:
            raise ValueError("response_seconds and deficit_cap must be > 0")
        if not (self.proportional_gain >= 0.0 and self.integral_gain >= 0.0):
            raise ValueError("gains must be ≥ 0")


@dataclass(frozen=True)
class PacingState:
    """Where a pacing controller is: the w to route with now, the deficit D ($, positive when under
    budget), the integral I, and the totals spent ($) and elapsed (seconds) since it started."""

    willingness_to_pay: float
    deficit_usd: float = 0.0
    integral: float = 0.0
    spent_usd: float = 0.0
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> PacingState:
        """The state :meth:`to_dict` wrote; raises ``KeyError`` for a missing field, ignores extra ones."""
        return cls(**{f.name: float(values[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class PacingController:
    """Steers w so spend tracks ``target_usd_per_second`` (> 0), reacting as ``tuning`` says."""

    target_usd_per_second: float
    tuning: PacingTuning = PacingTuning()

    def __post_init__(self) -> None:
        if not 0.0 < self.target_usd_per_second < math.inf:
            raise ValueError(f"target must be a positive $ per second, got {self.target_usd_per_second}")

    def initial_state(self) -> PacingState:
        return PacingState(willingness_to_pay=self.tuning.w_initial)

    def update(self, state: PacingState, spent_usd: float, elapsed_seconds: float) -> PacingState:
        """The state after ``spent_usd`` (≥ 0) was spent over ``elapsed_seconds`` (≥ 0) since ``state``.

        Its ``willingness_to_pay`` is the w to route with until the next update, in [w_min, w_max].
        Raises ``ValueError`` for a negative or non-finite amount.
        """
        if not (0.0 <= spent_usd < math.inf and 0.0 <= elapsed_seconds < math.inf):
            raise ValueError(f"spent {spent_usd} and elapsed {elapsed_seconds} must be finite and ≥ 0")
        t = self.tuning
        scale = self.target_usd_per_second * t.response_seconds  # $ of one response time at the target
        cap = t.deficit_cap * scale
        deficit = min(
            cap, max(-cap, state.deficit_usd + self.target_usd_per_second * elapsed_seconds - spent_usd)
        )
        error = deficit / scale
        integral = state.integral + error * elapsed_seconds / t.response_seconds
        log_w = self._log_w(error, integral)
        low, high = math.log(t.w_min), math.log(t.w_max)
        if (log_w > high and integral > state.integral) or (log_w < low and integral < state.integral):
            integral = state.integral  # saturated and pushed further out: do not integrate (anti-windup)
            log_w = self._log_w(error, integral)
        return PacingState(
            willingness_to_pay=min(t.w_max, max(t.w_min, math.exp(log_w))),
            deficit_usd=deficit,
            integral=integral,
            spent_usd=state.spent_usd + spent_usd,
            elapsed_seconds=state.elapsed_seconds + elapsed_seconds,
        )

    def _log_w(self, error: float, integral: float) -> float:
        t = self.tuning
        return math.log(t.w_initial) + t.proportional_gain * error + t.integral_gain * integral
