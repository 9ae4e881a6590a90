"""The live AIQ stores against a real redis-server: replicas that each saw part of the explored requests
agree on the numbers of all of them, and a Redis outage loses or doubles nothing."""

import asyncio
import math
from collections import defaultdict

import numpy as np
import pytest

from routeyard.evaluation.live_aiq import ExploredAnswer, LiveTally, summary_as_dict
from routeyard.gateway.live_aiq_store import InMemoryLiveAiq, RedisLiveAiq
from routeyard.testing.redis_server import RedisServer

BACKENDS = {"cheap": (0.55, 0.0001), "mid": (0.7, 0.002), "dear": (0.85, 0.01)}  # mean quality, $


def explored_requests(count, seed=7):
    """``count`` explored requests, as ``observe``'s arguments: two routers, three candidates, the policy's
    choice (graded) and one other backend explored with propensity 1/2 (uniform over the two others)."""
    rng = np.random.default_rng(seed)
    names = list(BACKENDS)
    requests = []
    for i in range(count):
        chosen, explored = (names[j] for j in rng.choice(3, size=2, replace=False))
        router = "router-a" if i % 3 else "router-b"
        requests.append((router, names, answer(rng, chosen, 1.0), answer(rng, explored, 0.5)))
    return requests


def answer(rng, backend, propensity):
    quality, cost = BACKENDS[backend]
    return ExploredAnswer(backend, float(rng.random() < quality), cost * rng.uniform(0.5, 1.5), propensity)


def numbers(summaries):
    """Every number of every router's summary, flattened: ``{(router, key, …): value}``."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk((*prefix, key), inner)
        elif isinstance(value, list):
            for key, inner in enumerate(value):
                walk((*prefix, key), inner)
        else:
            flat[prefix] = value

    for router, summary in summaries.items():
        walk((router,), summary_as_dict(summary))
    return flat


def assert_same_numbers(actual, expected):
    """Same keys, same numbers up to float rounding (Redis adds the sums in another order)."""
    got, want = numbers(actual), numbers(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if value is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


def test_two_replicas_agree_with_one_store_that_saw_everything(redis_server):
    requests = explored_requests(300)
    everything = InMemoryLiveAiq()
    for request in requests:
        everything.observe(*request)

    async def scenario():
        first, second = RedisLiveAiq(redis_server.url), RedisLiveAiq(redis_server.url)
        for i, request in enumerate(requests):
            (first if i % 2 else second).observe(*request)
        await first.exchange()
        await second.exchange()
        await first.exchange()  # reads back what the second sent after the first's last round trip
        views = first.summaries(), second.summaries()
        await first.close()
        await second.close()
        return views, (first.outages.failures, second.outages.failures)

    (first_view, second_view), failures = asyncio.run(scenario())
    assert failures == (0, 0)
    assert set(first_view) == {"router-a", "router-b"}
    assert first_view["router-a"].policy.quality.n == 200 and first_view["router-b"].policy.quality.n == 100
    assert math.isfinite(first_view["router-a"].aiq) and math.isfinite(first_view["router-a"].regret)
    assert_same_numbers(first_view, everything.summaries())
    assert_same_numbers(second_view, everything.summaries())


def test_a_redis_outage_loses_and_doubles_nothing(redis_server):
    requests = explored_requests(120, seed=11)
    before, during, after = requests[:40], requests[40:90], requests[90:]
    everything, sent_before = InMemoryLiveAiq(), InMemoryLiveAiq()
    for request in requests:
        everything.observe(*request)
    for request in before:
        sent_before.observe(*request)

    async def scenario():
        store = RedisLiveAiq(redis_server.url)
        for request in before:
            store.observe(*request)
        await store.exchange()
        assert store.outages.failures == 0
        redis_server.kill()
        for request in during:  # never raises, whatever Redis does
            store.observe(*request)
        store.observe(
            "router-a", ["cheap"], ExploredAnswer("cheap", 1.0, 0.1), ExploredAnswer("gone", 1.0, 0.1)
        )
        await store.exchange()
        await store.exchange()
        outage = store.outages.failures, store.summaries()  # the fleet as of the last round trip that worked
        redis_server.start()  # same port and directory: Redis comes back with what it acknowledged
        for request in after:
            store.observe(*request)
        await store.exchange()
        recovered = store.outages.failures, store.summaries()
        await store.exchange()  # nothing pending: sends nothing twice
        again = store.summaries()
        await store.close()
        reader = RedisLiveAiq(redis_server.url)  # a fresh replica sees exactly what Redis holds
        await reader.exchange()
        await reader.close()
        return outage, recovered, again, reader.summaries()

    (outage_failures, outage_view), (recovered_failures, recovered_view), again, fresh = asyncio.run(
        scenario()
    )
    assert outage_failures == 2
    assert_same_numbers(outage_view, sent_before.summaries())
    assert recovered_failures == 2  # no new failure once Redis is back
    for view in (recovered_view, again, fresh):
        assert_same_numbers(view, everything.summaries())
    assert fresh["router-a"].policy.quality.n + fresh["router-b"].policy.quality.n == 120


def test_a_delta_resent_after_its_answer_was_lost_is_applied_once(redis_server):
    """Redis applied a delta but the reply never arrived (a cut connection): the store still holds it as
    being sent and resends it under the same id; Redis must not add it twice."""
    requests = explored_requests(30, seed=3)
    expected = InMemoryLiveAiq()
    for request in requests:
        expected.observe(*request)

    async def scenario():
        store = RedisLiveAiq(redis_server.url)
        for request in requests:
            store.observe(*request)
        store._sending = ("routeyard:live:delta:lost-answer", store._delta)  # taken for sending
        store._delta = defaultdict(LiveTally)
        await store._send(*store._sending)  # applied, but pretend the answer was lost
        await store.exchange()  # resends the same delta under the same id
        await store.close()
        return store.summaries()

    assert_same_numbers(asyncio.run(scenario()), expected.summaries())
