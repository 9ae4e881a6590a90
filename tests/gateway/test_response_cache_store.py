"""The response cache's stores, in memory and against a real redis-server: answers come back as they were
put, by key and by the nearest vector of their group; the ttl, entry count and entry size bound them;
replicas share one Redis; and a Redis that is down or hangs makes misses, never errors."""

import asyncio
import logging
import socket
import time
from typing import Any

import numpy as np
import pytest

from routeyard.gateway.response_cache.memory_store import InMemoryResponseCache
from routeyard.gateway.response_cache.redis_store import RedisResponseCache
from routeyard.gateway.response_cache.store import CachedAnswer
from routeyard.gateway.response_cache.store_choice import response_cache_store
from routeyard.gateway.settings import GatewaySettings
from routeyard.testing.redis_server import RedisServer

DIMENSION = 8
BOUNDS: dict[str, Any] = {"ttl_seconds": 60.0, "max_entries": 100, "max_entry_bytes": 10_000}


def answer(text, backend="cheap", cost=0.002):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": backend}
    body["choices"] = [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    ]
    return CachedAnswer(backend, body, 12, len(text), cost, 1_764_500_000.5)


def basis(i, scale=1.0):
    """The ``i``-th unit vector of the test space, times ``scale``."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[i] = scale
    return vector


def between(i, j, weight):
    """A unit vector mostly along ``i``, tilted towards ``j`` by ``weight``; its cosine with ``i``."""
    vector = basis(i) + weight * basis(j)
    return vector / np.linalg.norm(vector), 1.0 / float(np.sqrt(1.0 + weight**2))


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture(params=["memory", "redis"])
def kind(request):
    return request.param


def open_store(kind, server, **bounds):
    """A store of ``kind`` with ``bounds`` over :data:`BOUNDS` (Redis: on ``server``)."""
    bounds = {**BOUNDS, **bounds}
    if kind == "memory":
        return InMemoryResponseCache(**bounds)
    return RedisResponseCache(server.url, **bounds)


@pytest.fixture
def make_store(kind, request):
    """Opens stores of the test's kind (the Redis ones on one server: replicas)."""
    server = request.getfixturevalue("redis_server") if kind == "redis" else None
    return lambda **bounds: open_store(kind, server, **bounds)


async def closed(*stores):
    for store in stores:
        await store.close()


def test_an_answer_comes_back_as_it_was_put(make_store):
    async def scenario():
        store = make_store()
        stored = await store.put("a1", answer("4"))
        found, missing = await store.get("a1"), await store.get("b2")
        found.body["routing"] = {"added": "by the caller"}  # a caller may change what it was given
        again = await store.get("a1")
        await closed(store)
        return stored, found, missing, again

    stored, found, missing, again = asyncio.run(scenario())
    assert stored is True
    assert missing is None
    assert again == answer("4")
    assert found.backend == "cheap" and found.cost_usd == 0.002 and found.stored_at == 1_764_500_000.5


def test_nearest_is_the_most_similar_answer_of_the_group_at_or_above_the_threshold(make_store):
    query, cosine = between(1, 2, 0.3)  # closest to basis 1, then 2

    async def scenario():
        store = make_store()
        for i in range(3):
            await store.put(f"k{i}", answer(f"answer {i}"), group="g", vector=basis(i, scale=2.0 + i))
        await store.put("other", answer("other group"), group="h", vector=basis(1))
        results = [
            await store.nearest("g", query, cosine - 0.01),
            await store.nearest("g", 5.0 * query, cosine - 0.01),  # not unit: the store normalises
            await store.nearest("g", query, cosine + 0.01),  # the best is below the threshold
            await store.nearest("g", basis(0), 1.0),  # identical: meets a threshold of 1
            await store.nearest("nobody", query, 0.1),
            await store.nearest("g", np.zeros(DIMENSION, dtype=np.float32), 0.1),
        ]
        await closed(store)
        return results

    best, scaled, below, identical, no_group, zero = asyncio.run(scenario())
    assert best is not None and best[0] == answer("answer 1")
    assert best[1] == pytest.approx(cosine, abs=1e-5)
    assert (
        scaled is not None
        and scaled[0] == answer("answer 1")
        and scaled[1] == pytest.approx(cosine, abs=1e-5)
    )
    assert below is None
    assert identical is not None and identical[0] == answer("answer 0") and identical[1] == pytest.approx(1.0)
    assert no_group is None and zero is None


def test_two_replicas_on_one_redis_see_each_others_entries_and_vectors(redis_server):
    async def scenario():
        first, second = (RedisResponseCache(redis_server.url, **BOUNDS) for _ in range(2))
        await first.put("from-first", answer("one"), group="g", vector=basis(0))
        await second.put("from-second", answer("two"), group="g", vector=basis(1))
        seen = [
            await second.get("from-first"),
            await first.get("from-second"),
            await second.nearest("g", basis(0), 0.9),
            await first.nearest("g", basis(1), 0.9),
        ]
        cold = RedisResponseCache(redis_server.url, **BOUNDS)  # a replica started later, asked at once
        concurrent = await asyncio.gather(*(cold.nearest("g", basis(1), 0.9) for _ in range(5)))
        sizes = first.index_size, second.index_size, cold.index_size
        await closed(first, second, cold)
        return seen, concurrent, sizes

    seen, concurrent, sizes = asyncio.run(scenario())
    assert seen[0] == answer("one") and seen[1] == answer("two")
    assert seen[2] == (answer("one"), pytest.approx(1.0)) and seen[3] == (answer("two"), pytest.approx(1.0))
    assert all(found == (answer("two"), pytest.approx(1.0)) for found in concurrent)
    assert sizes == ((2, 1), (2, 1), (2, 1))  # each vector indexed once per replica, concurrent reads or not


def test_entries_expire_after_the_ttl(make_store):
    async def scenario():
        store = make_store(ttl_seconds=2.0)
        put_at = time.monotonic()  # before the put: the entry's clock starts later, so gone_after ≥ ttl
        await store.put("k", answer("soon gone"), group="g", vector=basis(0))
        while_fresh = await store.get("k"), await store.nearest("g", basis(0), 0.9)
        read_fresh_after = time.monotonic() - put_at
        while time.monotonic() - put_at < 10.0 and await store.get("k") is not None:
            await asyncio.sleep(0.1)
        gone_after = time.monotonic() - put_at
        after = await store.get("k"), await store.nearest("g", basis(0), 0.9), store.index_size
        await closed(store)
        return while_fresh, read_fresh_after, gone_after, after

    (fresh, fresh_near), read_fresh_after, gone_after, (expired, expired_near, index_size) = asyncio.run(
        scenario()
    )
    assert read_fresh_after < 1.9  # else this machine stalled too long for the first read to mean "fresh"
    assert fresh == answer("soon gone") and fresh_near is not None
    assert 1.9 <= gone_after < 10.0
    assert expired is None and expired_near is None
    assert index_size == (0, 0)


def test_beyond_max_entries_the_oldest_are_evicted_from_the_entries_and_the_index(make_store):
    async def scenario():
        writer, reader = make_store(max_entries=3), None
        reader = make_store(max_entries=3) if isinstance(writer, RedisResponseCache) else writer
        for i in range(2):
            await writer.put(f"k{i}", answer(f"answer {i}"), group="g", vector=basis(i))
        before = await reader.nearest("g", basis(0), 0.9)  # the reader has indexed k0 and k1
        for i in range(2, 5):
            await (writer if i % 2 else reader).put(
                f"k{i}", answer(f"answer {i}"), group="g", vector=basis(i)
            )
        entries = [await reader.get(f"k{i}") for i in range(5)]
        near = [await reader.nearest("g", basis(i), 0.9) for i in range(5)]
        sizes = writer.index_size, reader.index_size
        await closed(*{writer, reader})
        return before, entries, near, sizes

    before, entries, near, sizes = asyncio.run(scenario())
    assert before is not None
    assert entries[:2] == [None, None] and entries[2:] == [answer(f"answer {i}") for i in range(2, 5)]
    assert near[:2] == [None, None]
    assert [found[0] for found in near[2:]] == [answer(f"answer {i}") for i in range(2, 5)]
    assert sizes[1] == (3, 1)


def test_an_answer_over_max_entry_bytes_is_not_stored(make_store):
    async def scenario():
        store = make_store(max_entry_bytes=2_000)
        large = await store.put("large", answer("x" * 3_000), group="g", vector=basis(0))
        small = await store.put("small", answer("x" * 500), group="g", vector=basis(1))
        found = await store.get("large"), await store.nearest("g", basis(0), 0.9), await store.get("small")
        await closed(store)
        return large, small, found

    large, small, (large_entry, large_near, small_entry) = asyncio.run(scenario())
    assert large is False and large_entry is None and large_near is None
    assert small is True and small_entry == answer("x" * 500)


def test_the_memory_store_holds_at_most_max_total_bytes_evicting_the_oldest():
    async def scenario():
        store = InMemoryResponseCache(**{**BOUNDS, "max_total_bytes": 2_500})
        puts = [await store.put(f"k{i}", answer("x" * 1_000), group="g", vector=basis(i)) for i in range(3)]
        held = [await store.get(f"k{i}") for i in range(3)], store.total_bytes
        near = await store.nearest("g", basis(0), 0.9)  # the evicted one's vector went with it
        again = await store.put("k2", answer("y" * 1_000))  # a key put again counts once
        too_big = await store.put("huge", answer("x" * 3_000))  # larger than the whole bound
        totals = store.total_bytes, len([k for k in ("k1", "k2") if await store.get(k) is not None])
        await closed(store)
        return puts, held, near, again, too_big, totals

    puts, (entries, total), near, again, too_big, (total_after, kept) = asyncio.run(scenario())
    assert puts == [True, True, True] and entries[0] is None and None not in entries[1:]
    assert 2_000 < total <= 2_500 and near is None
    assert again is True and too_big is False and total_after <= 2_500 and kept == 2


def test_a_group_without_a_vector_is_a_callers_mistake(make_store):
    async def scenario():
        store = make_store()
        try:
            with pytest.raises(ValueError, match="group and vector"):
                await store.put("k", answer("a"), group="g")
        finally:
            await closed(store)

    asyncio.run(scenario())


def test_redis_stays_bounded_fleet_wide_whatever_the_number_of_groups(redis_server):
    async def scenario():
        replicas = [RedisResponseCache(redis_server.url, **{**BOUNDS, "max_entries": 10}) for _ in range(2)]
        sizes = []
        for i in range(60):
            await replicas[i % 2].put(
                f"k{i}", answer(f"{i}"), group=f"group-{i}", vector=basis(i % DIMENSION)
            )
            await replicas[0].nearest("group-0", basis(0), 0.9)  # reads what is new after every put
            sizes.append(replicas[0].index_size)
        await closed(*replicas)
        return sizes

    sizes = asyncio.run(scenario())
    client = redis_server.client()
    assert max(sizes) == (10, 10) and sizes[-1] == (10, 10)
    assert len(client.keys("routeyard:response_cache:entry:*")) == 10
    assert client.zcard("routeyard:response_cache:order") == 10
    assert client.xlen("routeyard:response_cache:vectors") == 10
    assert 0 < client.pttl("routeyard:response_cache:vectors") <= 60_000


def test_a_stopped_redis_makes_misses_without_raising_and_it_works_again_after_a_restart(
    redis_server, caplog
):
    caplog.set_level(logging.INFO, logger="routeyard.gateway")

    async def scenario():
        store = RedisResponseCache(redis_server.url, **BOUNDS)
        await store.put("k-before", answer("kept"), group="g", vector=basis(0))
        redis_server.kill()
        down = [
            await store.get("k-before"),
            await store.nearest("g", basis(0), 0.9),
            await store.put("k-down", answer("lost"), group="g", vector=basis(1)),
        ]
        failures = store.outages.failures
        redis_server.start()
        up = [
            await store.get("k-before"),
            await store.nearest("g", basis(0), 0.9),
            await store.put("k-after", answer("new"), group="g", vector=basis(2)),
            await store.nearest("g", basis(2), 0.9),
        ]
        await closed(store)
        return down, failures, up

    down, failures, up = asyncio.run(scenario())
    assert down == [None, None, False]
    assert failures == 3
    assert up == [
        answer("kept"),
        (answer("kept"), pytest.approx(1.0)),
        True,
        (answer("new"), pytest.approx(1.0)),
    ]
    messages = [r.getMessage() for r in caplog.records if "response cache" in r.getMessage()]
    assert messages == [
        "response cache: Redis failed (ConnectionError); misses until it answers",
        "response cache: Redis answers again",
    ]


def test_a_redis_that_does_not_answer_is_a_miss_within_the_timeout():
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"

        async def scenario():
            store = RedisResponseCache(url, **BOUNDS, timeout_seconds=0.2)
            started = time.monotonic()
            results = [
                await store.get("k"),
                await store.nearest("g", basis(0), 0.9),
                await store.put("k", answer("a"), group="g", vector=basis(0)),
            ]
            elapsed = time.monotonic() - started
            await closed(store)
            return results, elapsed

        results, elapsed = asyncio.run(scenario())
    assert results == [None, None, False]
    assert elapsed < 2.0


def test_the_settings_choose_the_store(redis_server):
    async def scenario():
        stores = [
            response_cache_store(GatewaySettings(cache_ttl_seconds=5.0, cache_max_entries=7)),
            response_cache_store(GatewaySettings(redis_url=redis_server.url, cache_max_entry_bytes=999)),
        ]
        await closed(*stores)
        return stores

    memory, in_redis = asyncio.run(scenario())
    assert isinstance(memory, InMemoryResponseCache) and (memory.ttl_seconds, memory.max_entries) == (5.0, 7)
    assert isinstance(in_redis, RedisResponseCache) and in_redis.max_entry_bytes == 999


def test_a_replica_that_starts_late_catches_up_with_the_index_over_a_few_searches(redis_server):
    count = 2_500  # more than one search reads (2 pages of 1000)
    vectors = np.random.default_rng(3).standard_normal((count, DIMENSION)).astype(np.float32)

    async def scenario():
        writer = RedisResponseCache(redis_server.url, **{**BOUNDS, "max_entries": count})
        for i in range(count):
            await writer.put(f"k{i}", answer(f"{i}"), group="g", vector=vectors[i])
        late = RedisResponseCache(redis_server.url, **{**BOUNDS, "max_entries": count})
        newest = [await late.nearest("g", vectors[-1], 0.999) for _ in range(2)]
        sizes = late.index_size
        await closed(writer, late)
        return newest, sizes

    (first, second), sizes = asyncio.run(scenario())
    assert first is None  # not read yet: a miss, never a wait
    assert second is not None and second[0] == answer(f"{count - 1}")
    assert sizes == (count, 1)
