"""Both key stores — Redis (a real redis-server) and SQLite (a real file) — against the same scenarios:
keys, refusals with their retry_after, minute rate limits, day and month budgets, settlement, and
budgets that hold under concurrent requests."""

import asyncio
import datetime
import stat
import threading

import pytest

from routeyard.gateway.keys.key_store_choice import open_key_store
from routeyard.gateway.keys.redis_key_store import RedisKeyStore
from routeyard.gateway.keys.sqlite_key_store import SqliteKeyStore
from routeyard.gateway.keys.virtual_key import KeyLimits, new_key, parse_plain_key
from routeyard.gateway.settings import GatewaySettings
from routeyard.testing.redis_server import RedisServer


def at(year, month, day, hour, minute, second):
    """Unix seconds of a UTC moment."""
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC).timestamp()


def split(plain):
    """(id, secret) of a plain key that must be well formed."""
    parts = parse_plain_key(plain)
    assert parts is not None
    return parts


NOW = at(2026, 1, 15, 12, 0, 30)  # 30 s into a minute, 11 h 59 min 30 s before the next UTC day
DAY = 86_400
TO_TOMORROW = 11 * 3600 + 59 * 60 + 30
TO_FEBRUARY = 16 * DAY + TO_TOMORROW


@pytest.fixture(params=["redis", "sqlite"])
def open_store(request, tmp_path):
    """A function that opens a new store (a new client or connection) on the same data."""
    if request.param == "sqlite":
        return lambda: SqliteKeyStore(tmp_path / "keys.sqlite")
    server = RedisServer(tmp_path / "redis").start()
    request.addfinalizer(server.stop)
    return lambda: RedisKeyStore(server.url)


def run(open_store, scenario):
    """``scenario(store)`` on a fresh store, on a new event loop; its result."""

    async def main():
        store = open_store()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def usd(amount):
    return pytest.approx(amount, abs=1e-9)


def test_keys_are_created_found_listed_and_revoked(open_store):
    async def scenario(store):
        first, plain = await store.create(KeyLimits(name="alice", budget_day_usd=5.0, metadata={"team": "a"}))
        second, _ = await store.create(KeyLimits(name="bob", routers=("auto",)))
        key_id, secret = split(plain)
        found = await store.get(key_id)
        assert found == first and found.matches(secret)
        assert [r.id for r in await store.list()] == [first.id, second.id]
        assert await store.revoke(first.id) and await store.revoke(first.id)  # the second: still True
        revoked = await store.get(first.id)
        assert revoked.revoked_at is not None and revoked.limits == first.limits
        assert [r.revoked_at is not None for r in await store.list()] == [True, False]
        assert not await store.revoke("0123456789ab")
        assert await store.get("0123456789ab") is None

    run(open_store, scenario)


def test_a_revocation_keeps_its_first_time(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k"))
        await store.revoke(record.id)
        first = (await store.get(record.id)).revoked_at
        await asyncio.sleep(0.01)
        await store.revoke(record.id)
        assert (await store.get(record.id)).revoked_at == first

    run(open_store, scenario)


def test_a_wrong_secret_does_not_match(open_store):
    async def scenario(store):
        record, plain = await store.create(KeyLimits(name="k"))
        _, other = await store.create(KeyLimits(name="other"))
        stored = await store.get(record.id)
        assert stored.matches(split(plain)[1])
        assert not stored.matches(split(other)[1])
        secret = split(plain)[1]
        assert not stored.matches(secret[:-1] + ("y" if secret.endswith("x") else "x"))
        assert "salt" not in stored.public() and "secret_sha256" not in stored.public()

    run(open_store, scenario)


def test_revoked_expired_and_unknown_keys_are_refused_even_with_a_stale_record(open_store):
    async def scenario(store):
        revoked, _ = await store.create(KeyLimits(name="revoked"))
        stale = revoked  # what a gateway cached before the revocation
        await store.revoke(revoked.id)
        expiring, _ = await store.create(KeyLimits(name="expiring", expires_at=NOW + 60))
        # a record that does not know of its expiry: the store's own is checked
        unaware = expiring.model_copy(
            update={"limits": expiring.limits.model_copy(update={"expires_at": None})}
        )
        never_stored, _ = new_key(KeyLimits(name="ghost"))
        assert (await store.reserve(stale, cost_usd=0.0, tokens=1, now=NOW)).refusal == "revoked"
        assert (await store.reserve(unaware, cost_usd=0.0, tokens=1, now=NOW)).reservation is not None
        late = await store.reserve(unaware, cost_usd=0.0, tokens=1, now=NOW + 60)
        assert late.refusal == "expired" and late.reservation is None
        assert (await store.reserve(never_stored, cost_usd=0.0, tokens=1, now=NOW)).refusal == "unknown_key"
        assert (await store.usage(revoked.id, NOW)).requests_this_minute == 0

    run(open_store, scenario)


def test_requests_per_minute_are_limited_and_reset_the_next_minute(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", rpm=3))
        for _ in range(3):
            assert (await store.reserve(record, cost_usd=0.0, tokens=10, now=NOW)).reservation is not None
        refused = await store.reserve(record, cost_usd=0.0, tokens=10, now=NOW + 20)
        assert (refused.refusal, refused.retry_after, refused.reservation) == ("rate_limited", 10, None)
        # a request not counted again (a downgraded retry of one already counted) passes rpm
        assert (
            await store.reserve(record, cost_usd=0.0, tokens=10, count_request=False, now=NOW)
        ).reservation
        usage = await store.usage(record.id, NOW)
        assert (usage.requests_this_minute, usage.tokens_this_minute) == (3, 40)
        assert (await store.reserve(record, cost_usd=0.0, tokens=10, now=NOW + 30)).reservation is not None
        assert (await store.usage(record.id, NOW + 30)).requests_this_minute == 1

    run(open_store, scenario)


def test_tokens_per_minute_are_limited_and_reset_the_next_minute(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", tpm=1000))
        assert (await store.reserve(record, cost_usd=0.0, tokens=600, now=NOW)).reservation is not None
        refused = await store.reserve(record, cost_usd=0.0, tokens=401, now=NOW)
        assert (refused.refusal, refused.retry_after) == ("rate_limited", 30)
        assert (await store.reserve(record, cost_usd=0.0, tokens=400, now=NOW)).reservation is not None
        assert (await store.usage(record.id, NOW)).tokens_this_minute == 1000
        assert (await store.reserve(record, cost_usd=0.0, tokens=1000, now=NOW + 30)).reservation is not None

    run(open_store, scenario)


def test_a_day_budget_refuses_until_the_next_utc_day(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=1.0))
        admitted = await store.reserve(record, cost_usd=0.6, tokens=1, now=NOW)
        assert admitted.budget_fraction == pytest.approx(0.6)
        refused = await store.reserve(record, cost_usd=0.5, tokens=1, now=NOW)
        assert (refused.refusal, refused.retry_after) == ("budget_exceeded", TO_TOMORROW)
        assert refused.budget_fraction == pytest.approx(1.1)  # what it would have been
        assert (
            await store.reserve(record, cost_usd=0.4, tokens=1, now=NOW)
        ).budget_fraction == pytest.approx(1.0)
        assert (await store.usage(record.id, NOW)).spent_day_usd == usd(1.0)
        tomorrow = await store.reserve(record, cost_usd=0.5, tokens=1, now=NOW + TO_TOMORROW)
        assert tomorrow.reservation is not None and tomorrow.budget_fraction == pytest.approx(0.5)
        assert (await store.usage(record.id, NOW + TO_TOMORROW)).spent_month_usd == usd(1.5)

    run(open_store, scenario)


def test_a_month_budget_spans_days_and_refuses_until_the_next_utc_month(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=1.5, budget_month_usd=2.0))
        assert (await store.reserve(record, cost_usd=1.5, tokens=1, now=NOW - DAY)).reservation is not None
        refused = await store.reserve(record, cost_usd=0.6, tokens=1, now=NOW)
        assert (refused.refusal, refused.retry_after) == ("budget_exceeded", TO_FEBRUARY)
        assert refused.budget_fraction == pytest.approx(2.1 / 2.0)
        admitted = await store.reserve(record, cost_usd=0.3, tokens=1, now=NOW)
        assert admitted.budget_fraction == pytest.approx(1.8 / 2.0)  # the month's share is the larger
        next_month = NOW + TO_FEBRUARY
        assert (await store.reserve(record, cost_usd=1.5, tokens=1, now=next_month)).reservation is not None
        assert (await store.usage(record.id, next_month)).spent_month_usd == usd(1.5)

    run(open_store, scenario)


def test_a_zero_budget_refuses_any_cost_and_admits_free_requests_as_used_up(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=0.0))
        assert (
            await store.reserve(record, cost_usd=0.000001, tokens=1, now=NOW)
        ).refusal == "budget_exceeded"
        free = await store.reserve(record, cost_usd=0.0, tokens=1, now=NOW)
        assert free.reservation is not None and free.budget_fraction == 1.0
        unlimited, _ = await store.create(KeyLimits(name="free"))
        assert (await store.reserve(unlimited, cost_usd=9.0, tokens=1, now=NOW)).budget_fraction == 0.0

    run(open_store, scenario)


def test_settling_replaces_the_reservation_in_its_own_windows(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=1.0, tpm=1000))
        first = (await store.reserve(record, cost_usd=0.1, tokens=100, now=NOW)).reservation
        await store.settle(first, cost_usd=0.25, tokens=40)
        usage = await store.usage(record.id, NOW)
        assert (usage.spent_day_usd, usage.spent_month_usd) == (usd(0.25), usd(0.25))
        assert (usage.requests_this_minute, usage.tokens_this_minute) == (1, 40)
        # a reservation released (0 and 0), settled after its minute is over: its own minute is corrected
        second = (await store.reserve(record, cost_usd=0.5, tokens=900, now=NOW)).reservation
        assert (await store.reserve(record, cost_usd=0.0, tokens=100, now=NOW)).refusal == "rate_limited"
        assert (await store.reserve(record, cost_usd=0.0, tokens=50, now=NOW + 30)).reservation is not None
        await store.settle(second, cost_usd=0.0, tokens=0)
        assert (await store.usage(record.id, NOW)).tokens_this_minute == 40
        assert (await store.usage(record.id, NOW + 30)).tokens_this_minute == 50
        assert (await store.usage(record.id, NOW + 30)).spent_day_usd == usd(0.25)
        assert (await store.reserve(record, cost_usd=0.75, tokens=1, now=NOW)).reservation is not None

    run(open_store, scenario)


def test_bad_amounts_are_refused_before_anything_is_counted(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k"))
        for cost, tokens in ((-0.1, 1), (float("nan"), 1), (float("inf"), 1), (0.1, -1)):
            with pytest.raises(ValueError):
                await store.reserve(record, cost_usd=cost, tokens=tokens, now=NOW)
        assert (await store.usage(record.id, NOW)).requests_this_minute == 0

    run(open_store, scenario)


BUDGET, COST = 1.0, 0.07  # 14 requests fit (0.98), the 15th would not


async def spend(store, record, cost, actual, rounds=10):
    """Reserve, 'call', settle at ``actual`` until refused (at most ``rounds`` times); requests admitted."""
    admitted = 0
    for _ in range(rounds):
        admission = await store.reserve(record, cost_usd=cost, tokens=1, now=NOW)
        if admission.reservation is None:
            assert admission.refusal == "budget_exceeded"
            return admitted
        admitted += 1
        await asyncio.sleep(0)
        await store.settle(admission.reservation, cost_usd=actual, tokens=1)
    return admitted


def test_concurrent_requests_never_spend_past_the_budget(open_store):
    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=BUDGET))
        admitted = await asyncio.gather(*[spend(store, record, COST, COST) for _ in range(16)])
        return sum(admitted), await store.usage(record.id, NOW)

    admitted, usage = run(open_store, scenario)
    assert admitted == 14 and usage.spent_day_usd == usd(14 * COST)


def test_concurrent_overshoot_is_bounded_by_what_requests_in_flight_cost_beyond_their_reservations(
    open_store,
):
    reserved, actual, tasks = 0.05, 0.08, 16

    async def scenario(store):
        record, _ = await store.create(KeyLimits(name="k", budget_day_usd=BUDGET))
        admitted = await asyncio.gather(*[spend(store, record, reserved, actual) for _ in range(tasks)])
        return sum(admitted), await store.usage(record.id, NOW)

    admitted, usage = run(open_store, scenario)
    assert usage.spent_day_usd == usd(admitted * actual)
    # refused only once the budget was nearly used; past it by at most each in-flight request's excess
    assert BUDGET - reserved < usage.spent_day_usd <= BUDGET + tasks * (actual - reserved) + 1e-9


def test_two_processes_worth_of_connections_share_one_budget(open_store):
    """Two threads, each with its own store (its own Redis client or SQLite connection) and event loop,
    8 concurrent requests each: still exactly the budget's worth admitted."""
    record = run(open_store, lambda store: store.create(KeyLimits(name="k", budget_day_usd=BUDGET)))[0]
    admitted = []

    def worker():
        async def scenario(store):
            return sum(await asyncio.gather(*[spend(store, record, COST, COST) for _ in range(8)]))

        admitted.append(run(open_store, scenario))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(admitted) == 2 and sum(admitted) == 14


def test_redis_counters_expire_shortly_after_their_windows(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:

        async def scenario():
            store = RedisKeyStore(server.url)
            record, _ = await store.create(KeyLimits(name="k"))
            await store.reserve(record, cost_usd=0.1, tokens=5, now=NOW)
            await store.close()
            return record.id

        key_id = asyncio.run(scenario())
        client = server.client()
        minute = int(NOW // 60)
        ttls = {
            name: client.ttl(f"routeyard:key:{key_id}:{name}")
            for name in ("usd:day:20260115", "usd:month:202601", f"requests:{minute}", f"tokens:{minute}")
        }
        assert 60 < ttls[f"requests:{minute}"] <= 90 and 60 < ttls[f"tokens:{minute}"] <= 90
        assert TO_TOMORROW < ttls["usd:day:20260115"] <= TO_TOMORROW + 3600
        assert TO_FEBRUARY < ttls["usd:month:202601"] <= TO_FEBRUARY + DAY
        assert client.ttl(f"routeyard:key:{key_id}") == -1  # the record itself stays
    finally:
        server.stop()


def test_the_settings_choose_sqlite_in_a_private_file_or_redis(tmp_path):
    path = tmp_path / "state" / "routeyard" / "keys.sqlite"
    store = open_key_store(GatewaySettings(keys_db=path))
    assert isinstance(store, SqliteKeyStore)
    asyncio.run(store.close())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        stat.S_IMODE(path.parent.stat().st_mode) == stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    )
    redis_store = open_key_store(GatewaySettings(keys_db=path, redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(redis_store, RedisKeyStore)
    asyncio.run(redis_store.close())
