"""Walking routers: routers that call backends themselves, step by step, before an answer is kept.

A predictive or fixed router only ranks backends and the request lifecycle calls them. A walking router
(:class:`WalkingRouter`; the cascade and the plan router are) gets a ``call(backend)`` from the lifecycle
and decides itself which backends to call — one after another or several at once — and which answer to
keep, judging answers as it goes. What it did is a :class:`Walk`: every :class:`Step` (a reply with its
judgement if it was judged, or the error the call failed with), whether the kept answer was accepted,
and the budget and threshold it walked under. A plan router's walk is a :class:`PlanWalk`, which also
names the plan it took, the agreement verdict and the step whose answer is kept. The lifecycle settles,
renders and logs any walk the same way, so a new walking router is one new router kind.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from routeyard.gateway.backends.backend import Reply
from routeyard.gateway.errors import UpstreamError, UpstreamRejectedError
from routeyard.gateway.router import Decision
from routeyard.gateway.wire import RoutingOptions, content_text
from routeyard.judges.judge import Answer, Judgement


@dataclass(frozen=True)
class Step:
    """One call of a walk: the backend, its reply and the judge's verdict (None when the answer was not
    judged), or the error it failed with; ``seconds`` the call took and ``judge_seconds`` the judging;
    ``role`` what the call was for in a plan (``single``, ``first``, ``second``, ``escalation``; None in
    a cascade)."""

    backend: str
    seconds: float
    reply: Reply | None = None
    judgement: Judgement | None = None
    error: UpstreamError | None = None
    judge_seconds: float = 0.0
    role: str | None = None

    @property
    def cost_usd(self) -> float:
        """The $ of the call and of judging its answer."""
        answer = self.reply.cost_usd if self.reply is not None else 0.0
        return answer + (self.judgement.cost_usd if self.judgement is not None else 0.0)


@dataclass(frozen=True)
class Walk:
    """Every step of a walk, in order; whether the kept answer was accepted (its score ≥ ``threshold``);
    the $ ``budget_usd`` it ran under."""

    steps: tuple[Step, ...]
    accepted: bool
    budget_usd: float
    threshold: float

    @property
    def kept(self) -> Step | None:
        """The last step that got a reply (the answer returned), or None when every call failed."""
        return next((s for s in reversed(self.steps) if s.reply is not None), None)

    @property
    def cost_usd(self) -> float:
        """The $ of every call and every grading."""
        return sum(s.cost_usd for s in self.steps)

    @property
    def rejection(self) -> UpstreamRejectedError | None:
        """The upstream 4xx that ended the walk, if one did."""
        last = self.steps[-1].error if self.steps else None
        return last if isinstance(last, UpstreamRejectedError) else None


@dataclass(frozen=True)
class PlanWalk(Walk):
    """A plan router's walk: ``plan`` the name of the plan whose answer is kept (or the last one tried),
    ``failed_plans`` those tried before it that got no answer, ``verdict`` the agreement judge's on the
    pair (``agree``, ``disagree``, ``cannot_tell``; None for a single plan or a pair with a failed call)
    and ``kept_step`` the index in ``steps`` of the kept answer (None when none is). ``accepted``: the
    kept answer is the one the plan settles on (not a stand-in kept after a failed escalation)."""

    budget_usd: float = math.inf
    threshold: float = 0.5
    plan: str = ""
    failed_plans: tuple[str, ...] = ()
    verdict: str | None = None
    kept_step: int | None = None

    @property
    def kept(self) -> Step | None:
        """The step whose answer is kept, or None when no answer is."""
        return None if self.kept_step is None else self.steps[self.kept_step]

    @property
    def rejection(self) -> UpstreamRejectedError | None:
        """An upstream 4xx that stopped the walk (calls made together may end in any order)."""
        return next((s.error for s in self.steps if isinstance(s.error, UpstreamRejectedError)), None)


def answer_of(reply: Reply, model: str | None) -> Answer:
    """The answer a judge sees in ``reply`` from ``model`` (the predictor's name for the backend): the
    first choice's text (``content_text`` of its content: text parts joined; empty when the upstream
    sent none) and finish reason."""
    choices = reply.body.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    text = content_text(message.get("content")) if isinstance(message, dict) else ""
    return Answer(text, first.get("finish_reason"), model)


@runtime_checkable
class WalkingRouter(Protocol):
    """A router that calls backends itself (see the module docstring)."""

    name: str

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """The plan: the routes the walk may take, in order — backends for a cascade, plans by name for a
        plan router (raises NoBackendFitsError as a Router)."""
        ...

    async def walk(
        self,
        decision: Decision,
        prompt: str,
        call: Callable[[str], Awaitable[Reply]],
        options: RoutingOptions,
    ) -> Walk:
        """Walk ``decision`` for ``prompt`` (its turns as one text) with whole calls ``call(backend)``,
        within what the request's ``options`` allow; never raises for an upstream's failure or
        rejection: they are steps of the walk."""
        ...
