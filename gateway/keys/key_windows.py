"""What every key store computes alike: a reservation's windows and what follows from them.

The windows of an instant ``now``: its UTC day (``YYYYMMDD``), UTC month (``YYYYMM``) and unix minute.
A key counts, per window, $ (integer micro-dollars, :data:`MICRO_USD`) per day and per month, and
requests and tokens per minute, in counters named by :func:`counter_names` (the Redis store prefixes
them with the key's record key, the SQLite store keeps them in rows). A counter lives a little longer
than its window (:meth:`KeyWindows.ttls`) and is then dropped.

A store's reserve step ends in a :class:`Verdict`; :func:`admission` turns it into the
:class:`~routeyard.gateway.keys.virtual_key.Admission` the caller sees, with its ``retry_after`` and
``budget_fraction`` — so both stores answer identically.
"""

from __future__ import annotations

import datetime
import functools
import math
from dataclasses import dataclass
from enum import IntEnum

from routeyard.gateway.keys.virtual_key import MICRO_USD, Admission, KeyLimits, Refusal, Reservation

# how long a counter outlives its window, in seconds: a late settle still finds it
MINUTE_MARGIN, DAY_MARGIN, MONTH_MARGIN = 60, 3_600, 86_400
NO_BUDGET = -1  # a budget that is not set, where budgets are passed as integer micro-dollars


class Verdict(IntEnum):
    """How a reserve step ended (the Redis script returns these numbers)."""

    ADMITTED = 0
    UNKNOWN_KEY = 1
    REVOKED = 2
    EXPIRED = 3
    RATE_LIMITED = 4
    DAY_BUDGET = 5  # the day's $ plus the cost would pass the day budget
    MONTH_BUDGET = 6  # the month's (checked first: retrying tomorrow would not help)


_KEY_REFUSALS: dict[Verdict, Refusal] = {
    Verdict.UNKNOWN_KEY: "unknown_key",
    Verdict.REVOKED: "revoked",
    Verdict.EXPIRED: "expired",
}


@dataclass(frozen=True)
class KeyWindows:
    """The windows of the instant ``now`` (unix seconds, UTC), and when the day and month end."""

    now: float
    day: str
    month: str
    minute: int
    day_end: int  # unix seconds
    month_end: int

    def seconds_to_next_minute(self) -> int:
        return _seconds_until((self.minute + 1) * 60, self.now)

    def seconds_to_next_day(self) -> int:
        return _seconds_until(self.day_end, self.now)

    def seconds_to_next_month(self) -> int:
        return _seconds_until(self.month_end, self.now)

    def ttls(self) -> tuple[int, int, int]:
        """Seconds from ``now`` that a minute, day and month counter must live: to its window's end, plus
        a margin."""
        return (
            self.seconds_to_next_minute() + MINUTE_MARGIN,
            self.seconds_to_next_day() + DAY_MARGIN,
            self.seconds_to_next_month() + MONTH_MARGIN,
        )

    def counter_names(self) -> tuple[str, str, str, str]:
        """See :func:`counter_names`."""
        return counter_names(self.day, self.month, self.minute)


def windows_at(now: float) -> KeyWindows:
    """The UTC day, UTC month and unix minute ``now`` falls in (every request asks: the calendar part is
    worked out once per day)."""
    day, month, day_end, month_end = _calendar(int(now // _DAY_SECONDS))
    return KeyWindows(now, day, month, int(now // 60), day_end, month_end)


_DAY_SECONDS = 86_400  # unix time has no leap seconds: a UTC day is always this long


@functools.lru_cache(maxsize=4)
def _calendar(day_number: int) -> tuple[str, str, int, int]:
    """The day ``day_number`` (days since 1970-01-01, UTC): its ``YYYYMMDD``, its ``YYYYMM``, and the unix
    seconds at which the day and the month end."""
    start = datetime.datetime.fromtimestamp(day_number * _DAY_SECONDS, tz=datetime.UTC)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    month_end = datetime.datetime(year, month, 1, tzinfo=datetime.UTC).timestamp()
    return start.strftime("%Y%m%d"), start.strftime("%Y%m"), (day_number + 1) * _DAY_SECONDS, int(month_end)


def counter_names(day: str, month: str, minute: int) -> tuple[str, str, str, str]:
    """The names of a key's counters in these windows: $ of the day, $ of the month, requests of the
    minute, tokens of the minute."""
    return f"usd:day:{day}", f"usd:month:{month}", f"requests:{minute}", f"tokens:{minute}"


def micro_usd(usd: float) -> int:
    """``usd`` in integer micro-dollars; raises ValueError for a negative or non-finite amount."""
    if not math.isfinite(usd) or usd < 0:
        raise ValueError("a cost must be a finite number of dollars ≥ 0")
    return round(usd * MICRO_USD)


def budgets_micro(limits: KeyLimits) -> tuple[int, int]:
    """The day and month budgets in micro-dollars (:data:`NO_BUDGET` where unset)."""
    day, month = limits.budget_day_usd, limits.budget_month_usd
    return (NO_BUDGET if day is None else micro_usd(day), NO_BUDGET if month is None else micro_usd(month))


def budget_fraction(limits: KeyLimits, spent_day: int, spent_month: int) -> float:
    """The largest share of a set budget that ``spent_day`` and ``spent_month`` (micro-dollars) are; a
    budget of 0 counts as used up (1.0); 0.0 without budgets."""
    shares = [
        1.0 if budget == 0 else spent / budget
        for budget, spent in zip(budgets_micro(limits), (spent_day, spent_month), strict=True)
        if budget != NO_BUDGET
    ]
    return max(shares, default=0.0)


def admission(
    verdict: Verdict,
    reservation: Reservation,
    limits: KeyLimits,
    windows: KeyWindows,
    spent: tuple[int, int],
) -> Admission:
    """What the caller sees of ``verdict`` on ``reservation`` (the one it asked for, granted or not).

    ``spent`` is the day's and month's $ (micro-dollars) before it; ``budget_fraction`` counts it in (for
    a refusal: what the fraction would have been), and is 0 when the key is unknown, revoked or expired.
    """
    if verdict in _KEY_REFUSALS:
        return Admission(reservation=None, refusal=_KEY_REFUSALS[verdict])
    cost = reservation.cost_micro_usd
    fraction = budget_fraction(limits, spent[0] + cost, spent[1] + cost)
    if verdict == Verdict.ADMITTED:
        return Admission(reservation=reservation, budget_fraction=fraction)
    if verdict == Verdict.RATE_LIMITED:
        return Admission(None, "rate_limited", windows.seconds_to_next_minute(), fraction)
    retry_after = (
        windows.seconds_to_next_day() if verdict == Verdict.DAY_BUDGET else windows.seconds_to_next_month()
    )
    return Admission(None, "budget_exceeded", retry_after, fraction)


def reservation_at(key_id: str, windows: KeyWindows, cost_usd: float, tokens: int) -> Reservation:
    """The reservation of ``cost_usd`` and ``tokens`` for ``key_id`` in ``windows``; raises ValueError for
    a negative or non-finite cost, or negative tokens."""
    if tokens < 0:
        raise ValueError("tokens must be ≥ 0")
    return Reservation(key_id, micro_usd(cost_usd), tokens, windows.day, windows.month, windows.minute)


def corrections(reservation: Reservation, cost_usd: float, tokens: int) -> tuple[int, int]:
    """What settling ``reservation`` at ``cost_usd`` and ``tokens`` adds to its $ (micro-dollars) and
    tokens counters: actual minus reserved (negative when it cost less). Raises ValueError like
    :func:`reservation_at`."""
    if tokens < 0:
        raise ValueError("tokens must be ≥ 0")
    return micro_usd(cost_usd) - reservation.cost_micro_usd, tokens - reservation.tokens


def _seconds_until(moment: float, now: float) -> int:
    """Whole seconds from ``now`` to ``moment``, rounded up, at least 1."""
    return max(1, math.ceil(moment - now))
