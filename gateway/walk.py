"""Walking routers: routers that call backends themselves, step by step, before an answer is kept.

A predictive or fixed router only ranks backends and the request lifecycle calls them. A walking router
(:class:`WalkingRouter`; the cascade is one) gets a ``call(backend)`` from the lifecycle and decides
itself which backends to call and which answer to keep, judging answers as it goes. What it did is a
:class:`Walk`: every :class:`Step` (a reply with its judgement, or the error the call failed with),
whether the kept answer was accepted, and the budget and threshold it walked under. The lifecycle
settles, renders and logs any walk the same way, so a new walking router is one new router kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from routeyard.gateway.backends.backend import Reply
from routeyard.gateway.errors import UpstreamError, UpstreamRejectedError
from routeyard.gateway.router import Decision
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.judge import Judgement


@dataclass(frozen=True)
class Step:
    """One call of a walk: the backend, its reply and the judge's verdict, or the error it failed with;
    ``seconds`` the call took and ``judge_seconds`` the judging."""

    backend: str
    seconds: float
    reply: Reply | None = None
    judgement: Judgement | None = None
    error: UpstreamError | None = None
    judge_seconds: float = 0.0

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


@runtime_checkable
class WalkingRouter(Protocol):
    """A router that calls backends itself (see the module docstring)."""

    name: str

    async def decide(self, turns: tuple[str, ...], options: RoutingOptions, available: set[str]) -> Decision:
        """The plan: the backends the walk may call, in order (raises NoBackendFitsError as a Router)."""
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
