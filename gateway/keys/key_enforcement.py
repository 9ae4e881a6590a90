"""A virtual key's limits applied to one chat completion: what it may ask, then reserve, then settle.

1. **Ask** (:func:`restricted_request`, before routing): ``max_tokens`` / ``max_completion_tokens`` above
   the key's cap or ``n`` above its ``max_n`` is a 400; with a cap and neither asked, ``max_tokens`` is set
   to the cap. A ``model`` naming a router or backend outside the key's lists is a 403 ``model_not_allowed``;
   backends outside ``backends`` are added to ``routing.exclude``, so routers never pick them.
2. **Reserve** (:meth:`KeyEnforcer.admit`, after the router decided): the store reserves the predicted $
   of the decision (:func:`predicted_cost`) and the prompt's estimated tokens. Near a budget
   (``downgrade_at``), or when the choice does not fit, a routed request is decided again at the key's
   ``downgrade_willingness_to_pay`` and reserved again; refused, it is a 429 ``budget_exceeded`` or
   ``rate_limited`` with ``retry-after`` (revoked or expired keys: 401). A store that fails refuses the
   request (503 ``key_store_unavailable``): keys fail closed.
3. **Settle** (:meth:`KeyEnforcer.settle`, once the request is logged): the actual $ of every call and
   the actual tokens replace the reservation, in the background (the reply does not wait for it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from routeyard.gateway.backends.backend import Backend, Usage
from routeyard.gateway.errors import (
    AuthenticationError,
    InvalidRequestError,
    KeyStoreUnavailableError,
    PermissionDeniedError,
    RateLimitError,
)
from routeyard.gateway.keys.virtual_key import Admission, KeyLimits, KeyRecord, KeyStore, Reservation
from routeyard.gateway.router import Decision
from routeyard.gateway.wire import ChatCompletionRequest, RoutingOptions

logger = logging.getLogger("routeyard.keys")
ASSUMED_COMPLETION_TOKENS = 256  # a request without max_tokens is priced as if it asked for this many
Redecide = Callable[[ChatCompletionRequest], Awaitable[Decision]]


def restricted_request(
    request: ChatCompletionRequest, limits: KeyLimits, resolved: str, backends: set[str]
) -> ChatCompletionRequest:
    """``request`` within ``limits`` (step 1 of the module docstring); ``resolved`` is the router or
    backend its ``model`` names, ``backends`` every configured backend. Raises InvalidRequestError (400)
    or PermissionDeniedError (403)."""
    _check_caps(request, limits)
    allowed = set(limits.routers or ()) | set(limits.backends or ())
    unrestricted = limits.routers is None if resolved not in backends else limits.backends is None
    if not unrestricted and resolved not in allowed:
        raise PermissionDeniedError(f"this key may not use model {resolved}", code="model_not_allowed")
    update: dict[str, Any] = {}
    if limits.max_tokens is not None and request.max_tokens is None and request.max_completion_tokens is None:
        update["max_tokens"] = limits.max_tokens
    if limits.backends is not None:
        options = request.routing or RoutingOptions()
        excluded = sorted(set(options.exclude) | (backends - set(limits.backends)))
        update["routing"] = options.model_copy(update={"exclude": excluded})
    return request.model_copy(update=update) if update else request


def _check_caps(request: ChatCompletionRequest, limits: KeyLimits) -> None:
    cap = limits.max_tokens
    for field in ("max_tokens", "max_completion_tokens"):
        asked = getattr(request, field)
        if cap is not None and asked is not None and asked > cap:
            raise InvalidRequestError(f"{field} {asked} is above this key's cap of {cap}", param=field)
    if limits.max_n is not None and request.n is not None and request.n > limits.max_n:
        raise InvalidRequestError(f"n {request.n} is above this key's cap of {limits.max_n}", param="n")


def predicted_cost(decision: Decision, request: ChatCompletionRequest, backends: dict[str, Backend]) -> float:
    """The $ to reserve for ``decision``: the router's prediction for its first choice, else that
    backend's price for the prompt's tokens and ``max_tokens`` (or :data:`ASSUMED_COMPLETION_TOKENS`),
    else 0 (a backend without a price)."""
    first = decision.ranked[0] if decision.ranked else None
    candidate = decision.candidate(first) if first else None
    if candidate is not None and candidate.predicted_cost_usd is not None:
        return max(0.0, candidate.predicted_cost_usd)
    price = getattr(backends.get(first or ""), "price", None)
    if price is None:
        return 0.0
    asked = request.max_completion_tokens or request.max_tokens or ASSUMED_COMPLETION_TOKENS
    return float(price.cost(Usage(prompt_tokens=estimated_prompt_tokens(request), completion_tokens=asked)))


def estimated_prompt_tokens(request: ChatCompletionRequest) -> int:
    """A cheap count of the prompt's tokens (4 characters each): rate limits need no tokenizer."""
    return sum(len(turn) for turn in request.prompt_turns()) // 4 + 4 * len(request.messages)


@dataclass(frozen=True)
class KeyHold:
    """A request's reservation and the enforcer that settles it (``RequestTrace.key_hold``)."""

    reservation: Reservation
    enforcer: KeyEnforcer

    def settle(self, cost_usd: float, usage: Usage | None) -> None:
        """Settle the reservation at ``cost_usd`` $ and ``usage``'s tokens, in the background."""
        self.enforcer.settle(self.reservation, cost_usd, usage)


class KeyEnforcer:
    """Reserves and settles virtual keys' requests in ``store`` (steps 2–3 of the module docstring)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._settling: set[asyncio.Task[None]] = set()

    async def admit(
        self,
        key: KeyRecord,
        request: ChatCompletionRequest,
        decision: Decision,
        backends: dict[str, Backend],
        redecide: Redecide | None,
    ) -> tuple[Decision, Reservation]:
        """The decision to carry out (``decision``, or the downgraded one ``redecide`` gave) and its
        reservation; raises RateLimitError (429) or AuthenticationError (revoked, expired)."""
        tokens = estimated_prompt_tokens(request)
        admission = await self._reserve(key, predicted_cost(decision, request, backends), tokens, True)
        if redecide is not None and _near_budget(admission, key.limits):
            if admission.reservation is not None:  # released before the cheaper one is reserved
                await self._release(admission.reservation)
            cheaper = request.model_copy(update={"routing": _downgraded(request, key.limits)})
            decision = await redecide(cheaper)
            counted = admission.reservation is not None
            admission = await self._reserve(
                key, predicted_cost(decision, request, backends), tokens, not counted
            )
        if admission.reservation is None:
            raise _refusal(admission)
        return decision, admission.reservation

    def settle(self, reservation: Reservation, cost_usd: float, usage: Usage | None) -> None:
        """Settle ``reservation`` at ``cost_usd`` $ and ``usage``'s tokens, in the background."""
        tokens = usage.prompt_tokens + usage.completion_tokens if usage else reservation.tokens
        self._spawn(self.store.settle(reservation, cost_usd=cost_usd, tokens=tokens))

    async def close(self) -> None:
        """Wait (≤ 5 s) for the settlements still running."""
        if self._settling:
            await asyncio.wait(self._settling, timeout=5.0)

    async def _reserve(self, key: KeyRecord, cost: float, tokens: int, count: bool) -> Admission:
        """The store's admission; raises KeyStoreUnavailableError (503) when the store fails."""
        try:
            return await self.store.reserve(
                key, cost_usd=cost, tokens=tokens, count_request=count, now=time.time()
            )
        except Exception as exc:  # Redis down, SQLite locked past its timeout: refuse, never let through
            logger.error("the key store failed to reserve (%s)", type(exc).__name__)
            raise KeyStoreUnavailableError("the key store is unavailable; try again") from exc

    async def _release(self, reservation: Reservation) -> None:
        """Give ``reservation`` back; raises KeyStoreUnavailableError (503) when the store fails."""
        try:
            await self.store.settle(reservation, cost_usd=0.0, tokens=0)
        except Exception as exc:
            logger.error("the key store failed to release a reservation (%s)", type(exc).__name__)
            raise KeyStoreUnavailableError("the key store is unavailable; try again") from exc

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._settling.add(task)
        task.add_done_callback(self._settled)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a key's settlement failed (%s)", type(task.exception()).__name__)


def _near_budget(admission: Admission, limits: KeyLimits) -> bool:
    if limits.downgrade_at is None:
        return False
    if admission.reservation is None:
        return admission.refusal == "budget_exceeded"
    return admission.budget_fraction >= limits.downgrade_at


def _downgraded(request: ChatCompletionRequest, limits: KeyLimits) -> RoutingOptions:
    options = request.routing or RoutingOptions()
    return options.model_copy(update={"willingness_to_pay": limits.downgrade_willingness_to_pay})


def _refusal(admission: Admission) -> Exception:
    if admission.refusal in ("revoked", "expired", "unknown_key"):
        return AuthenticationError(f"this API key is {admission.refusal.replace('_', ' ')}")
    if admission.refusal == "budget_exceeded":
        return RateLimitError(
            "this key's budget is spent", code="budget_exceeded", retry_after=admission.retry_after
        )
    return RateLimitError(
        "this key's rate limit is reached", code="rate_limited", retry_after=admission.retry_after
    )
