"""What the Redis usage log cannot write is dropped, counted and logged by type, never silently, and never
stops the writer: a batch Redis refuses, a record that cannot be encoded, what is left at close."""

import asyncio
import logging
import time

import pytest

from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.usage import RouteRecord
from routeyard.testing.redis_server import RedisServer
from tests.gateway.test_usage_exactly_once import until_written


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def record(i, cost=0.002):
    return RouteRecord(f"req_{i:032x}", time.time(), "router-knn", "cheap", 200, "f" * 64, cost_usd=cost)


def test_a_batch_redis_refuses_is_dropped_whole_and_the_writer_goes_on(redis_server, caplog):
    redis = redis_server.client()

    async def scenario():
        log = RedisUsageLog(redis_server.url, flush_interval=0.01)
        await log.start()
        redis.set("routeyard:requests:day", "not a hash")  # WRONGTYPE for every batch: permanent
        for i in range(10):
            log.record(record(i))
        await until_written(log)  # not stuck retrying: refused, dropped
        refused = (log.dropped, log.written)
        redis.delete("routeyard:requests:day")
        for i in range(10, 13):
            log.record(record(i))
        await until_written(log)
        await log.close()
        return refused, log

    with caplog.at_level(logging.WARNING, logger="routeyard.usage"):
        refused, log = asyncio.run(scenario())
    assert refused == (10, 0) and (log.dropped, log.written) == (10, 3)
    # the refused batch left nothing behind: the script checks every key before it writes
    assert [f["request_id"] for _, f in redis.xrange("routeyard:requests")] == [
        f"req_{i:032x}" for i in range(10, 13)
    ]
    assert redis.hgetall("routeyard:requests:router") == {"router-knn": "3"}
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropped a batch of 10 entries (ResponseError: WRONGTYPE)" in m for m in messages)
    assert not any("req_" in m or "router-knn" in m for m in messages)  # types, never contents


def test_a_record_that_cannot_be_encoded_is_dropped_alone(redis_server, caplog):
    async def scenario():
        log = RedisUsageLog(redis_server.url, flush_interval=0.01)
        await log.start()
        log.record(record(0))
        log.record(record(1, cost=float("nan")))  # Redis would refuse the whole batch's increments
        log.record(record(2))
        await until_written(log)
        await log.close()
        return log

    with caplog.at_level(logging.ERROR, logger="routeyard.usage"):
        log = asyncio.run(scenario())
    assert (log.dropped, log.written) == (1, 2)
    assert redis_server.client().hgetall("routeyard:requests:backend") == {"cheap": "2"}
    assert [r.getMessage() for r in caplog.records] == [
        "usage log: dropped a record that cannot be encoded (ValueError)"
    ]


def test_closing_while_redis_is_down_counts_what_was_left_unwritten(redis_server, caplog):
    async def scenario():
        log = RedisUsageLog(redis_server.url, flush_interval=0.01)
        await log.start()
        log.record(record(0))
        await until_written(log)
        redis_server.kill()
        for i in range(1, 8):
            log.record(record(i))
        log.feedback(f"req_{1:032x}", 0.25)
        log.feedback(f"req_{2:032x}", 0.75)
        await asyncio.sleep(0.2)  # the writer has taken a batch and is retrying it
        buffered = log.buffered
        await log.close(timeout=0.3)
        return buffered, log

    with caplog.at_level(logging.WARNING, logger="routeyard.usage"):
        buffered, log = asyncio.run(scenario())
    assert buffered == 9
    assert (log.dropped, log.written, log.buffered) == (9, 1, 0)
    assert "usage log: closed with 9 entries unwritten (counted as dropped)" in caplog.messages


def test_closing_a_log_whose_writer_never_started_counts_its_entries():
    async def scenario():
        log = RedisUsageLog("redis://127.0.0.1:1/0")  # nothing listens on port 1
        log.record(record(0))
        log.feedback(f"req_{0:032x}", 1.0)
        await log.close(timeout=0.1)
        return log

    log = asyncio.run(scenario())
    assert (log.dropped, log.buffered) == (2, 0)
