"""Where a pacer's state lives (``routeyard.gateway.spend_pacing``): one process's memory, or a Redis hash
every replica pacing the same router shares.

A :class:`PacingStore` does one *exchange* at a time: it adds the $ a pacer spent since its last exchange
to the shared ``pending_usd``, applies the pacer's :class:`Proposal` (a controller update computed from
the state at some version) only if no replica updated the state since, and answers a :class:`Snapshot`
of the state and the store's clock. :class:`RedisPacingStore` does it in one Lua script on Redis's clock
(``TIME``), the same for every replica; a failure is a :class:`PacingStoreError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.policy.pacing import PacingState


class PacingStoreError(Exception):
    """The store could not be reached or held a state it could not read; the message says which."""


@dataclass(frozen=True)
class Proposal:
    """A controller update computed from the state at ``version``: the ``state`` after it, the pending
    $ it consumed, and the store's time it was computed at (the new ``updated_at``)."""

    version: int
    state: PacingState
    consumed_usd: float
    updated_at: float


@dataclass(frozen=True)
class Snapshot:
    """The shared state as a store answered it: ``state`` (None before the first update), the $ added
    since it was computed (``pending_usd``), when it was (``updated_at``), its ``version`` and the
    store's clock ``now`` (seconds)."""

    state: PacingState | None
    pending_usd: float
    updated_at: float | None
    version: int
    now: float


class PacingStore(Protocol):
    """Where one paced router's state lives."""

    async def exchange(self, spend_usd: float, proposal: Proposal | None) -> Snapshot:
        """Add ``spend_usd`` to the pending $, apply ``proposal`` if its version is still the current
        one (else drop it), and answer the state after that — all in one atomic step. Raises
        :class:`PacingStoreError`."""
        ...


@dataclass
class InMemoryPacingStore:
    """The state in this process (no ``redis_url``); ``clock`` gives seconds (default monotonic)."""

    clock: Callable[[], float] = time.monotonic
    _snapshot: Snapshot | None = None

    async def exchange(self, spend_usd: float, proposal: Proposal | None) -> Snapshot:
        """See :meth:`PacingStore.exchange`; never raises."""
        now = self.clock()
        current = self._snapshot or Snapshot(None, 0.0, None, 0, now)
        pending = current.pending_usd + spend_usd
        if proposal is not None and proposal.version == current.version:
            pending -= proposal.consumed_usd
            current = Snapshot(proposal.state, pending, proposal.updated_at, current.version + 1, now)
        self._snapshot = Snapshot(current.state, max(pending, 0.0), current.updated_at, current.version, now)
        return self._snapshot


# KEYS[1]: the pacer's hash. ARGV: 1 the $ to add to pending_usd; 2 the proposal's version ('' for none);
# 3 the $ it consumed, negated; 4 its updated_at; 5… its state's fields and values, alternating. Answers
# the hash's fields and values, alternating, then Redis's TIME (seconds, microseconds).
_EXCHANGE = """
if tonumber(ARGV[1]) > 0 then redis.call('HINCRBYFLOAT', KEYS[1], 'pending_usd', ARGV[1]) end
if ARGV[2] ~= '' then
  local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
  if version == tonumber(ARGV[2]) then
    redis.call('HINCRBYFLOAT', KEYS[1], 'pending_usd', ARGV[3])
    redis.call('HSET', KEYS[1], 'version', version + 1, 'updated_at', ARGV[4], unpack(ARGV, 5))
  end
end
local answer = redis.call('HGETALL', KEYS[1])
local now = redis.call('TIME')
table.insert(answer, now[1])
table.insert(answer, now[2])
return answer
"""


class RedisPacingStore:
    """The state in a Redis hash ``<prefix>:pacing:<router>`` shared by every replica (one Lua script,
    :data:`_EXCHANGE`). Use it on one event loop. redis-py's retries are off and its timeouts short: a
    down Redis fails an exchange within ``timeout_seconds``."""

    def __init__(self, url: str, router: str, *, prefix: str = "routeyard", timeout_seconds: float = 0.5):
        self.key = f"{prefix}:pacing:{router}"
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._script: Any = self._client.register_script(_EXCHANGE)

    async def exchange(self, spend_usd: float, proposal: Proposal | None) -> Snapshot:
        """See :meth:`PacingStore.exchange`."""
        args: list[str] = [repr(spend_usd), "", "0", "0"]
        if proposal is not None:
            args[1:] = [str(proposal.version), repr(-proposal.consumed_usd), repr(proposal.updated_at)]
            for name, value in proposal.state.to_dict().items():
                args += [name, repr(value)]
        try:
            answer = cast(list[str], await self._script(keys=[self.key], args=args))
            return _snapshot(answer)
        except (redis.RedisError, OSError, TimeoutError, ValueError, KeyError) as exc:
            raise PacingStoreError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


def _snapshot(answer: list[str]) -> Snapshot:
    """The script's answer read; raises ValueError or KeyError for a damaged hash."""
    *pairs, seconds, microseconds = answer
    stored = {pairs[i]: float(pairs[i + 1]) for i in range(0, len(pairs), 2)}
    state_fields = {f.name for f in fields(PacingState)}
    state = PacingState.from_dict(stored) if state_fields <= stored.keys() else None
    return Snapshot(
        state,
        max(stored.get("pending_usd", 0.0), 0.0),
        stored.get("updated_at"),
        int(stored.get("version", 0.0)),
        float(seconds) + float(microseconds) / 1e6,
    )
