"""The Redis key store: virtual keys and their counters shared by every gateway replica.

Layout (``<p>`` is the prefix, ``routeyard`` by default). The scripts name a key's counters from its record
hash's name, so the store needs one Redis (a primary, with replicas if wanted), not a Redis Cluster:

- ``<p>:key:<id>``: a hash — ``record`` (the :class:`KeyRecord` as JSON, as created), ``expires_at``
  (unix seconds, when the key expires) and ``revoked_at`` (set once, by :meth:`RedisKeyStore.revoke`);
- ``<p>:keys``: a sorted set of ids scored by creation time (:meth:`RedisKeyStore.list`);
- ``<p>:key:<id>:<counter>``: integer counters named by
  :func:`~routeyard.gateway.keys.key_windows.counter_names` ($ in micro-dollars per UTC day and month,
  requests and tokens per unix minute), each with an EXPIRE a little past its window's end.

``create``, ``revoke``, ``reserve`` and ``settle`` are each one Lua script step (registered once), so each
is atomic across replicas: a reserve reads the stored revoked flag and expiry, checks the limits and
counts the request in one step. Concurrent reserves and settles go as groups (``group_commit``): one
script call applies a group's operations one after the other, each as if alone, in one round trip. The
windows are computed here from the caller's ``now`` and passed in.

redis-py's own retries are off: a reserve or settle is sent at most once (a retry after a lost answer
could count a request twice); a Redis error reaches the caller.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from routeyard.gateway.keys.group_commit import GroupCommit
from routeyard.gateway.keys.key_windows import (
    NO_BUDGET,
    Verdict,
    admission,
    budgets_micro,
    corrections,
    reservation_at,
    windows_at,
)
from routeyard.gateway.keys.virtual_key import (
    MICRO_USD,
    Admission,
    KeyLimits,
    KeyRecord,
    KeyUsage,
    Reservation,
    new_key,
)

_NEW_ID_ATTEMPTS = 5  # ids are 48 random bits: a second attempt is already next to impossible

# KEYS: 1 the record hash, 2 the index. ARGV: 1 record JSON, 2 created_at, 3 id, 4 expires_at or ''.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'expires_at', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS: 1 the record hash. ARGV: 1 now. The first revocation's time stays.
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
return 1
"""

# One group of reserves and settles (group_commit), applied in order. ARGV[1]: a letter per operation,
# 'r' (reserve) or 's' (settle); then one ARGV per operation, its fields joined by spaces, and one KEYS
# entry: the key's record hash, whose name its counters' names extend (``<record>:usd:day:<YYYYMMDD>``,
# ``…:usd:month:<YYYYMM>``, ``…:requests:<minute>``, ``…:tokens:<minute>``). A reserve's fields: day,
# month, minute, now, cost (micro-$), tokens, 1 to count the request (else 0), rpm, tpm, day budget, month
# budget (micro-$; -1: none), the minute's, day's and month's counter TTLs (s); it answers {verdict
# (key_windows.Verdict), $ of the day, $ of the month} ($ before this request). A settle's fields: day,
# month, minute, the $ correction, the tokens one; a counter that has expired (its window is long over)
# is left alone; it answers 0.
_GROUP = """
local function fields(text)
  local found = {}
  for word in string.gmatch(text, '%S+') do found[#found + 1] = word end
  return found
end
local function counters(record, f)
  return {record .. ':usd:day:' .. f[1], record .. ':usd:month:' .. f[2],
          record .. ':requests:' .. f[3], record .. ':tokens:' .. f[3]}
end
local function reserve(record, f)
  local state = redis.call('HMGET', record, 'record', 'revoked_at', 'expires_at')
  if not state[1] then return {1, 0, 0} end
  if state[2] then return {2, 0, 0} end
  if state[3] and tonumber(f[4]) >= tonumber(state[3]) then return {3, 0, 0} end
  local keys, count = counters(record, f), {}
  for i = 1, 4 do count[i] = tonumber(redis.call('GET', keys[i]) or '0') end
  local cost, tokens, rpm, tpm = tonumber(f[5]), tonumber(f[6]), tonumber(f[8]), tonumber(f[9])
  local day_budget, month_budget = tonumber(f[10]), tonumber(f[11])
  local verdict = 0
  if f[7] == '1' and rpm >= 0 and count[3] >= rpm then verdict = 4
  elseif tpm >= 0 and count[4] + tokens > tpm then verdict = 4
  elseif month_budget >= 0 and count[2] + cost > month_budget then verdict = 6
  elseif day_budget >= 0 and count[1] + cost > day_budget then verdict = 5 end
  if verdict == 0 then
    local added, ttls = {f[5], f[5], f[7], f[6]}, {f[13], f[14], f[12], f[12]}
    for i = 1, 4 do
      redis.call('INCRBY', keys[i], added[i])
      redis.call('EXPIRE', keys[i], ttls[i])
    end
  end
  return {verdict, count[1], count[2]}
end
local function settle(record, f)
  local keys = counters(record, f)
  local changes = {{keys[1], f[4]}, {keys[2], f[4]}, {keys[4], f[5]}}
  for _, change in ipairs(changes) do
    if change[2] ~= '0' and redis.call('EXISTS', change[1]) == 1 then
      redis.call('INCRBY', change[1], change[2])
    end
  end
  return 0
end
local results = {}
for i = 1, #ARGV[1] do
  local step = string.sub(ARGV[1], i, i) == 'r' and reserve or settle
  results[i] = step(KEYS[i], fields(ARGV[i + 1]))
end
return results
"""


@dataclass(frozen=True)
class _Operation:
    """One reserve (``kind`` 'r') or settle ('s') of a group: its key's record hash, and its fields."""

    kind: str
    record_key: str
    fields: str


class RedisKeyStore:
    """A :class:`~routeyard.gateway.keys.virtual_key.KeyStore` on the Redis at ``url`` (see the module
    docstring). Use it on one event loop; :meth:`close` closes its connections."""

    def __init__(self, url: str, *, prefix: str = "routeyard") -> None:
        self.prefix = prefix
        self._client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
        )
        self._create: Any = self._client.register_script(_CREATE)
        self._revoke: Any = self._client.register_script(_REVOKE)
        self._group_script: Any = self._client.register_script(_GROUP)
        self._group: GroupCommit[_Operation, Any] = GroupCommit(self._apply_group)

    async def create(self, limits: KeyLimits) -> tuple[KeyRecord, str]:
        """A new key: its record and its plain key (not stored)."""
        for _ in range(_NEW_ID_ATTEMPTS):
            record, plain = new_key(limits)
            expires = "" if limits.expires_at is None else repr(limits.expires_at)
            args = [record.model_dump_json(), repr(record.created_at), record.id, expires]
            if await self._create(keys=[self._record_key(record.id), self._index_key()], args=args):
                return record, plain
        raise RuntimeError("no free key id found")  # unreachable in practice: 48 random bits each time

    async def get(self, key_id: str) -> KeyRecord | None:
        return _record(cast(dict[str, str], await self._client.hgetall(self._record_key(key_id))))

    async def list(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        ids = cast(list[str], await self._client.zrange(self._index_key(), 0, -1))
        async with self._client.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(self._record_key(key_id))
            stored = await pipe.execute()
        return [record for record in map(_record, stored) if record is not None]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key (False when there is no such key); a second revocation keeps the first's time."""
        return bool(await self._revoke(keys=[self._record_key(key_id)], args=[repr(time.time())]))

    async def reserve(
        self, record: KeyRecord, *, cost_usd: float, tokens: int, count_request: bool = True, now: float
    ) -> Admission:
        """See :meth:`KeyStore.reserve`; raises ValueError for a negative or non-finite cost or tokens."""
        windows = windows_at(now)
        reservation = reservation_at(record.id, windows, cost_usd, tokens)
        limits = record.limits
        ceilings = [NO_BUDGET if limit is None else limit for limit in (limits.rpm, limits.tpm)]
        fields = [windows.day, windows.month, windows.minute, repr(now), reservation.cost_micro_usd, tokens]
        fields += [1 if count_request else 0, *ceilings, *budgets_micro(limits), *windows.ttls()]
        operation = _Operation("r", self._record_key(record.id), " ".join(map(str, fields)))
        verdict, spent_day, spent_month = await self._group.submit(operation)
        return admission(Verdict(verdict), reservation, limits, windows, (int(spent_day), int(spent_month)))

    async def settle(self, reservation: Reservation, *, cost_usd: float, tokens: int) -> None:
        """See :meth:`KeyStore.settle`; raises ValueError for a negative or non-finite cost or tokens."""
        dollars, more_tokens = corrections(reservation, cost_usd, tokens)
        if dollars == 0 and more_tokens == 0:
            return
        fields = (reservation.day, reservation.month, reservation.minute, dollars, more_tokens)
        await self._group.submit(
            _Operation("s", self._record_key(reservation.key_id), " ".join(map(str, fields)))
        )

    async def usage(self, key_id: str, now: float) -> KeyUsage:
        """The key's counters in ``now``'s windows (zeros for an unknown key)."""
        names = windows_at(now).counter_names()
        day, month, requests, tokens = (
            int(v or 0) for v in await self._client.mget(self._counter_keys(key_id, names))
        )
        return KeyUsage(day / MICRO_USD, month / MICRO_USD, requests, tokens)

    async def close(self) -> None:
        await self._group.close()
        await self._client.aclose()

    async def _apply_group(self, group: builtins.list[_Operation]) -> builtins.list[Any]:
        """Apply ``group`` in one script call (see ``_GROUP``); one answer per operation."""
        keys = [op.record_key for op in group]
        args = ["".join(op.kind for op in group), *(op.fields for op in group)]
        return cast(builtins.list[Any], await self._group_script(keys=keys, args=args))

    def _record_key(self, key_id: str) -> str:
        return f"{self.prefix}:key:{key_id}"

    def _index_key(self) -> str:
        return f"{self.prefix}:keys"

    def _counter_keys(self, key_id: str, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{self._record_key(key_id)}:{name}" for name in names)


def _record(stored: dict[str, str]) -> KeyRecord | None:
    """The record in a key's hash, with its revocation time; None for an empty (absent) hash."""
    if "record" not in stored:
        return None
    record = KeyRecord.model_validate_json(stored["record"])
    revoked = stored.get("revoked_at")
    return record if revoked is None else record.model_copy(update={"revoked_at": float(revoked)})
