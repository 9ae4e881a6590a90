"""The per-minute timeline behind the dashboard's charts: right numbers per minute, bounded memory, one
fleet view for replicas sharing a real Redis, and a Redis that is down never failing anything."""

import asyncio
import time

import httpx
import openai
import pytest

from routeyard.gateway.request_timeline import (
    LATENCY_RELATIVE_ERROR,
    NO_BACKEND,
    RedisRequestTimeline,
    RequestTimeline,
)
from routeyard.gateway.usage import RouteRecord
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import gateway_settings, start_gateway

START = 1_800_000_000.0  # a whole minute (30_000_000 × 60)


class Clock:
    def __init__(self, now=START):
        self.now = now

    def __call__(self):
        return self.now


def record(at, backend="cheap", router="router-knn", status=200, cost=0.001, seconds=0.1):
    return RouteRecord(
        request_id="req_x",
        time=at,
        router=router,
        backend=backend,
        status=status,
        prompt_sha256="0" * 64,
        cost_usd=cost,
        total_seconds=seconds,
    )


def test_each_minute_counts_requests_spend_errors_routing_and_latency():
    clock = Clock(START + 2 * 60 + 30)  # in the third minute
    timeline = RequestTimeline(window_minutes=3, clock=clock)
    for i in range(100):  # minute 0: 100 answered requests, 1 ms … 100 ms
        timeline.record(record(START + 1, backend="cheap" if i % 4 else "dear", seconds=(i + 1) / 1000))
    timeline.record(record(START + 61, backend=None, router=None, status=502, cost=0.0))  # minute 1
    timeline.record(record(START + 62, backend="dear", router="router-fixed", cost=0.25, seconds=2.0))
    view = timeline.view()
    assert view["minutes"] == [START, START + 60, START + 120]
    assert view["requests"] == [100, 2, 0]
    assert view["errors"] == [0, 1, 0]
    assert view["error_rate"] == [0.0, 0.5, None]
    assert view["requests_by_backend"] == {"cheap": [75, 0, 0], "dear": [25, 1, 0], NO_BACKEND: [0, 1, 0]}
    assert view["spend_usd_by_backend"]["dear"] == pytest.approx([0.025, 0.25, 0.0])
    assert view["spend_usd_by_backend"]["cheap"] == pytest.approx([0.075, 0.0, 0.0])
    assert view["routing"] == {
        "router-knn": {"cheap": [75, 0, 0], "dear": [25, 0, 0]},
        "router-fixed": {"dear": [0, 1, 0]},
        "direct": {NO_BACKEND: [0, 1, 0]},
    }
    p50, p99 = view["latency_ms"]["p50"], view["latency_ms"]["p99"]
    tolerance = LATENCY_RELATIVE_ERROR + 0.005  # the bin's half width, and 2-digit rounding
    assert p50[0] == pytest.approx(50.0, rel=tolerance) and p99[0] == pytest.approx(99.0, rel=tolerance)
    assert p50[1] == pytest.approx(2000.0, rel=tolerance) == p99[1]  # the error has no latency
    assert p50[2] is None and p99[2] is None


def test_only_the_kept_minutes_are_held():
    clock = Clock()
    timeline = RequestTimeline(keep_minutes=90, window_minutes=60, clock=clock)
    for minute in range(300):  # five hours, one request a minute
        clock.now = START + minute * 60
        timeline.record(record(clock.now))
        assert len(timeline.minutes) <= 90
    assert min(timeline.minutes) == int(clock.now // 60) - 89
    timeline.record(record(START))  # from long ago: not counted
    assert len(timeline.minutes) == 90 and sum(timeline.view()["requests"]) == 60


def test_replicas_sharing_redis_see_the_same_merged_timeline(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        view_a, view_b = asyncio.run(_two_replicas(server.url))
    finally:
        server.stop()
    assert view_a == view_b
    assert view_a["requests"][-2:] == [3, 2]
    assert view_a["requests_by_backend"] == {"cheap": [0] * 58 + [2, 1], "dear": [0] * 58 + [1, 1]}
    assert view_a["spend_usd_by_backend"]["dear"][-2:] == pytest.approx([0.5, 0.5])
    assert view_a["errors"][-1] == 1 and view_a["error_rate"][-1] == 0.5


async def _two_replicas(url):
    clock = Clock(START + 90)
    a, b = (RedisRequestTimeline(url, prefix="t", clock=clock) for _ in range(2))
    a.record(record(START + 10))
    a.record(record(START + 20, backend="dear", cost=0.5))
    b.record(record(START + 30))
    b.record(record(START + 70, backend="dear", cost=0.5))
    b.record(record(START + 80, status=500))
    await a.exchange()
    await b.exchange()
    await a.exchange()  # reads b's
    views = a.view(), b.view()
    await a.close()
    await b.close()
    return views


def test_a_redis_that_is_down_never_raises_and_the_replica_keeps_its_minutes(tmp_path, caplog):
    server = RedisServer(tmp_path / "redis")  # not started yet: nothing listens on its port
    try:
        sent = asyncio.run(_through_an_outage(server))
    finally:
        server.stop()
    down, back, failures = sent
    assert down == [0] * 59 + [2]  # its own requests, shown while Redis is down
    assert back == [0] * 59 + [3]  # sent once Redis is up, nothing lost or doubled
    assert failures == 2
    warnings = [r for r in caplog.records if "request timeline: Redis failed" in r.getMessage()]
    assert len(warnings) == 1  # logged once per outage


async def _through_an_outage(server):
    clock = Clock(START + 30)
    timeline = RedisRequestTimeline(server.url, prefix="t", clock=clock)
    timeline.record(record(START + 1))
    await timeline.exchange()
    timeline.record(record(START + 2))
    await timeline.exchange()
    down = timeline.view()["requests"]
    await asyncio.to_thread(server.start)
    timeline.record(record(START + 3))
    await timeline.exchange()
    back = timeline.view()["requests"]
    assert timeline.minutes == {}  # all sent
    failures = timeline.outages.failures
    await timeline.close()
    return down, back, failures


def test_two_gateways_sharing_redis_chart_the_fleets_traffic(upstream, artifact, tmp_path, monkeypatch):
    redis_server = RedisServer(tmp_path / "redis").start()
    settings = gateway_settings(upstream.url, artifact, redis_url=redis_server.url)
    replicas = []
    try:
        for i in range(2):
            (tmp_path / f"replica{i}").mkdir()
            replicas.append(start_gateway(settings, tmp_path / f"replica{i}", monkeypatch)[1])
        for server, backend, count in ((replicas[0], "cheap", 3), (replicas[1], "dear", 2)):
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            for _ in range(count):
                client.chat.completions.create(model=backend, messages=[{"role": "user", "content": "hi"}])
        views = agreed_timelines([server.url for server in replicas], 5)
    finally:
        for server in replicas:
            server.__exit__(None, None, None)
        redis_server.stop()
    assert {b: sum(v) for b, v in views[0]["requests_by_backend"].items()} == {"cheap": 3, "dear": 2}
    assert {b: sum(v) > 0 for b, v in views[0]["spend_usd_by_backend"].items()} == {
        "cheap": True,
        "dear": True,
    }


def agreed_timelines(urls, requests, timeout=15.0):
    """Each replica's /v1/stats timeline once they all count ``requests`` requests and agree (≤ ``timeout``
    s; read together, so a minute turning between two reads is read again)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        views = [httpx.get(url + "/v1/stats").json()["timeline"] for url in urls]
        if all(sum(view["requests"]) == requests and view == views[0] for view in views):
            return views
        time.sleep(0.3)
    raise AssertionError(f"{urls}: the replicas' timelines never agreed on {requests} requests")
