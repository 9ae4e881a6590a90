"""Feedback in Redis is a capped stream (it cannot grow without bound) that the export still joins to the
requests: the last feedback given for a request wins; an older version's feedback hash is read too."""

import asyncio

import pytest
import redis

from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.usage_export import feedback_table
from routeyard.testing.redis_server import RedisServer
from tests.gateway.test_usage_exactly_once import until_written
from tests.gateway.usage_records import answered, request_id


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_feedback_is_capped_like_the_request_stream(redis_server):
    async def scenario():
        log = RedisUsageLog(redis_server.url, max_stream_length=50, batch=100, flush_interval=0.01)
        await log.start()
        for i in range(3000):
            log.feedback(request_id(i), 0.5)
        await until_written(log)
        await log.close()

    asyncio.run(scenario())
    client = redis_server.client()
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): at most about cap + one node
    assert 50 <= client.xlen("routeyard:feedbacks") <= 150
    [(_, newest)] = client.xrevrange("routeyard:feedbacks", count=1)
    assert newest["request_id"] == request_id(2999)
    assert client.type("routeyard:feedback") == "none"  # the unbounded hash of old is not written


def test_the_export_joins_the_last_feedback_and_an_old_feedback_hash(redis_server):
    client = redis_server.client()
    client.hset("routeyard:feedback", mapping={request_id(0): "0.1", request_id(1): "0.2"})  # old version

    async def scenario():
        log = RedisUsageLog(redis_server.url, flush_interval=0.01)
        await log.start()
        for i in range(3):
            log.record(answered(i))
        log.feedback(request_id(1), 0.3)
        log.feedback(request_id(2), 0.4)
        log.feedback(request_id(2), 0.6)  # a second opinion replaces the first
        await until_written(log)
        await log.close()

    asyncio.run(scenario())
    exported = feedback_table(redis.Redis.from_url(redis_server.url, decode_responses=True))
    assert exported.table is not None
    quality = dict(zip(exported.table.sample_ids, exported.table.quality[:, 0], strict=True))
    assert quality == {request_id(0): 0.1, request_id(1): 0.3, request_id(2): 0.6}
    assert (exported.requests_seen, exported.without_feedback, exported.duplicates) == (3, 0, 0)
