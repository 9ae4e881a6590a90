"""A cascade's cost goes to the backends that spent it: in the Redis counters (as in Prometheus) and in the
exported training table (the answering model's own cost, not the request's total)."""

import asyncio
import time

import pytest
import redis

from routeyard.gateway.metrics import GatewayMetrics
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.usage import Attempt, RouteRecord
from routeyard.gateway.usage_export import feedback_table
from routeyard.testing.redis_server import RedisServer
from tests.gateway.test_usage_exactly_once import until_written

REQUEST = "req_" + "c" * 32


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def cascade():
    """``cheap`` answered, the judge scored it low; ``broken`` failed; ``dear`` answered and was kept."""
    attempts = (
        Attempt("cheap", "ok", 0.001, 0.2, score=0.1),
        Attempt("broken", "upstream_error", 0.0, 0.1),
        Attempt("dear", "ok", 0.03, 0.9, score=0.95),
    )
    return RouteRecord(
        REQUEST,
        time.time(),
        "router-cascade",
        "dear",
        200,
        "e" * 64,
        cost_usd=0.031,
        attempts=attempts,
        client="key_abc",
        prompt_turns=("Prove that there are infinitely many primes.",),
    )


def written(url, *records, feedback=()):
    async def scenario():
        log = RedisUsageLog(url, flush_interval=0.01)
        await log.start()
        for record in records:
            log.record(record)
        for request_id, quality in feedback:
            log.feedback(request_id, quality)
        await until_written(log)
        await log.close()

    asyncio.run(scenario())


def test_each_attempt_costs_its_own_backend_and_the_request_total_goes_to_the_rest(redis_server):
    written(redis_server.url, cascade())
    client = redis_server.client()
    spend = {k: float(v) for k, v in client.hgetall("routeyard:spend_usd:backend").items()}
    assert spend == pytest.approx({"cheap": 0.001, "dear": 0.03})  # not 0.031 to dear; no 0 for broken
    metrics = GatewayMetrics()
    metrics.record(cascade())
    for backend in ("cheap", "dear"):  # Redis and Prometheus agree
        prometheus = metrics.registry.get_sample_value("routeyard_cost_usd_total", {"backend": backend})
        assert spend[backend] == pytest.approx(prometheus)
    assert client.hgetall("routeyard:requests:backend") == {"dear": "1"}  # the request counts once
    for counter, name in (("router", "router-cascade"), ("client", "key_abc")):
        assert float(client.hget(f"routeyard:spend_usd:{counter}", name)) == pytest.approx(0.031)
        assert client.hget(f"routeyard:requests:{counter}", name) == "1"
    [(_, day_spend)] = client.hgetall("routeyard:spend_usd:day").items()
    assert float(day_spend) == pytest.approx(0.031)


def test_the_export_costs_the_answer_at_what_the_answering_model_charged(redis_server):
    written(redis_server.url, cascade(), feedback=[(REQUEST, 0.9)])
    exported = feedback_table(redis.Redis.from_url(redis_server.url, decode_responses=True))
    table = exported.table
    assert table is not None and list(table.sample_ids) == [REQUEST] and table.models == ("dear",)
    assert table.cost[0, 0] == pytest.approx(0.03)
    assert table.quality[0, 0] == 0.9 and table.datasets[0] == "router-cascade"
