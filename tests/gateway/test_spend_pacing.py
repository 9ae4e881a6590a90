"""Budget pacing through the gateway: a paced router's w follows its spend toward the target, within its
bounds; a request's own w wins; replicas sharing a real redis-server route with one w; Redis dying fails
no request. Over real HTTP with the official openai SDK, against the mock upstream.

Prices (conftest): a poem goes to ``dear`` (≈ $2.5e-4 a call) when w > ≈ 0.01, else to ``cheap``
(≈ $1e-5). Targets are per hour but tiny or large against a few requests a second, and the response
time is a second, so each test takes seconds.
"""

import asyncio
import math
import time

import httpx
import openai
import pytest
import yaml

from routeyard.gateway.pacing_store import InMemoryPacingStore, PacingStore, RedisPacingStore
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import ConfigError, load_settings
from routeyard.gateway.spend_pacing import SpendPacer
from routeyard.policy.pacing import PacingController, PacingTuning
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import POEMS, gateway_settings, start_gateway

W_MIN, W_MAX = 0.001, 10.0


def paced_router(start_w, target_usd_per_hour, name="paced"):
    return {
        "name": name,
        "kind": "knn",
        "artifact": "",  # filled in by settings()
        "willingness_to_pay": start_w,
        "spend_target_usd_per_hour": target_usd_per_hour,
        "w_min": W_MIN,
        "w_max": W_MAX,
        "pacing_response_seconds": 1.0,
    }


def settings(upstream, artifact, router, **overrides):
    base = gateway_settings(upstream.url, artifact, **overrides)
    base["routers"] = [*base["routers"], {**router, "artifact": str(artifact)}]
    return base


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def gateways(upstream, artifact, tmp_path, monkeypatch):
    """Start gateways on demand; every one is stopped at the end."""
    started = []

    def start(router, name="gw", **overrides):
        app, server = start_gateway(
            settings(upstream, artifact, router, **overrides), tmp_path / name, monkeypatch
        )
        assert runtime_of(app).ready, runtime_of(app).not_ready_reason
        started.append(server)
        return app, server

    for directory in ("gw", "a", "b"):
        (tmp_path / directory).mkdir()
    yield start
    for server in started:
        server.__exit__(None, None, None)


def ask(server, prompt=POEMS[0], model="paced", **kwargs):
    """The ``routing`` object of one completion."""
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=10.0)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kwargs
    )
    return reply.model_extra["routing"]


def pacing_gauge(server, name="routeyard_pacing_willingness_to_pay", router="paced"):
    text = httpx.get(server.url + "/metrics", timeout=10.0).text
    prefix = f'{name}{{router="{router}"}} '
    return next(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def drive(server, until, seconds=20.0, pause=0.02):
    """Poems to the paced router until ``until(routing)`` holds (or ``seconds`` pass): every routing."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(ask(server))
        if until(seen[-1]):
            break
        time.sleep(pause)
    return seen


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"spend_target_usd_per_day": 1.0}, "not both"),
        ({"w_min": 1.0, "w_max": 0.1}, "w_min (1) must be ≤ w_max (0.1)"),
        ({"spend_target_usd_per_hour": -1.0}, "greater than 0"),
    ],
)
def test_a_paced_router_with_two_targets_or_crossed_bounds_fails_at_start(
    upstream, artifact, tmp_path, fields, problem
):
    router = {**paced_router(start_w=1.0, target_usd_per_hour=1.0), **fields}
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings(upstream, artifact, router)))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert problem in str(error.value)


def test_over_target_w_falls_to_w_min_and_routes_cheaper(gateways):
    _, server = gateways(paced_router(start_w=1.0, target_usd_per_hour=0.0036))  # $1e-6 a second
    seen = drive(server, lambda r: r["willingness_to_pay"] <= W_MIN * 1.0001)
    ws = [r["willingness_to_pay"] for r in seen]
    assert seen[0]["backend"] == "dear" and seen[0]["willingness_to_pay_source"] == "pacing"
    assert ws[-1] == pytest.approx(W_MIN), f"w never reached w_min: {ws[-5:]}"
    assert all(W_MIN * 0.9999 <= w <= W_MAX for w in ws)
    assert ws == sorted(ws, reverse=True)  # only ever down, spend always over target
    assert seen[-1]["backend"] == "cheap"
    assert pacing_gauge(server) == pytest.approx(W_MIN)
    assert pacing_gauge(server, "routeyard_pacing_target_usd_per_second") == pytest.approx(1e-6)
    assert pacing_gauge(server, "routeyard_pacing_spend_usd_per_second") > 1e-6


def test_under_target_w_rises_to_w_max_and_routes_better(gateways):
    _, server = gateways(paced_router(start_w=W_MIN, target_usd_per_hour=360.0))  # $0.1 a second
    seen = drive(server, lambda r: r["willingness_to_pay"] >= W_MAX * 0.9999)
    ws = [r["willingness_to_pay"] for r in seen]
    assert seen[0]["backend"] == "cheap"
    assert ws[-1] == pytest.approx(W_MAX), f"w never reached w_max: {ws[-5:]}"
    assert all(W_MIN <= w <= W_MAX * 1.0001 for w in ws)
    assert ws == sorted(ws)
    assert seen[-1]["backend"] == "dear"


def test_a_requests_own_willingness_to_pay_wins_over_pacing(gateways):
    _, server = gateways(paced_router(start_w=1.0, target_usd_per_hour=0.0036))
    drive(server, lambda r: r["willingness_to_pay"] <= W_MIN * 1.0001)
    paced = ask(server)
    assert (paced["backend"], paced["willingness_to_pay_source"]) == ("cheap", "pacing")
    explicit = ask(server, extra_body={"routing": {"willingness_to_pay": 100.0}})
    assert explicit["willingness_to_pay"] == 100.0 and explicit["willingness_to_pay_source"] == "request"
    assert explicit["backend"] == "dear"
    suffixed = ask(server, model="paced-50")
    assert suffixed["willingness_to_pay"] == 50.0 and suffixed["willingness_to_pay_source"] == "request"
    assert suffixed["backend"] == "dear"
    fixed = ask(server, model="router-knn")  # an unpaced router says its w is its configured one
    assert fixed["willingness_to_pay"] == 100.0 and fixed["willingness_to_pay_source"] == "config"


def test_two_gateways_sharing_redis_route_with_one_w(gateways, redis_server):
    router = paced_router(start_w=W_MIN, target_usd_per_hour=360.0)
    _, first = gateways(router, "a", redis_url=redis_server.url)
    _, second = gateways(router, "b", redis_url=redis_server.url)
    drive(first, lambda r: r["willingness_to_pay"] >= W_MAX * 0.9999)
    # the second gateway has not routed yet: its first request goes at its own start, then it reads
    # the shared state (its own few $ over a fraction of a second would leave w near W_MIN)
    assert ask(second)["willingness_to_pay"] == pytest.approx(W_MIN)
    seen = drive(second, lambda r: r["willingness_to_pay"] >= W_MAX * 0.9999, seconds=3.0, pause=0.15)
    assert len(seen) <= 3 and seen[-1]["backend"] == "dear"
    assert pacing_gauge(first) == pacing_gauge(second) == pytest.approx(W_MAX)
    stored = redis_server.client().hgetall("routeyard:pacing:paced")
    assert float(stored["willingness_to_pay"]) == pytest.approx(W_MAX)


def test_redis_killed_mid_run_fails_no_request_and_keeps_w(gateways, redis_server):
    router = paced_router(start_w=1.0, target_usd_per_hour=0.0036)
    _, server = gateways(router, redis_url=redis_server.url)
    drive(server, lambda r: r["willingness_to_pay"] <= W_MIN * 1.0001)
    redis_server.kill()
    started = time.monotonic()
    after = [ask(server) for _ in range(30)]  # an error would raise in the SDK
    assert time.monotonic() - started < 15.0
    assert [r["willingness_to_pay"] for r in after] == [pytest.approx(W_MIN)] * 30
    assert pacing_gauge(server, "routeyard_pacing_store_failures_total") >= 1
    redis_server.start()  # back on the same port: pacing is shared again, failures stop growing
    drive(server, lambda r: False, seconds=0.6, pause=0.15)
    failures = pacing_gauge(server, "routeyard_pacing_store_failures_total")
    drive(server, lambda r: False, seconds=0.6, pause=0.15)
    assert pacing_gauge(server, "routeyard_pacing_store_failures_total") == failures


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_concurrent_pacers_lose_and_double_count_no_spend(shared, tmp_path):
    """Four pacers exchanging concurrently with one store: every $ observed is in the shared state once."""
    server = RedisServer(tmp_path / "redis").start() if shared else None
    memory = InMemoryPacingStore()

    def store() -> PacingStore:
        return RedisPacingStore(server.url, "concurrent") if server else memory

    async def run():
        controller = PacingController(1e-3, PacingTuning(W_MIN, W_MAX, 0.1, 1.0))
        pacers = [SpendPacer(controller, store(), interval_seconds=0.0) for _ in range(4)]
        total = 0.0
        for step in range(40):
            for i, pacer in enumerate(pacers):
                amount = 1e-4 * (1 + (step * 7 + i) % 5)
                pacer.observe(amount)
                total += amount
            await asyncio.gather(*(p.exchange() for p in pacers))
        await asyncio.gather(*(p.flush() for p in pacers))  # whatever was left unsent
        final = await pacers[0].store.exchange(0.0, None)
        for pacer in pacers:
            if isinstance(pacer.store, RedisPacingStore):
                await pacer.store.close()
        return total, final, pacers

    try:
        total, final, pacers = asyncio.run(run())
    finally:
        if server:
            server.stop()
    assert final.state is not None
    assert final.state.spent_usd + final.pending_usd == pytest.approx(total, rel=1e-9)
    assert all(p.store_failures == 0 for p in pacers)
    assert all(W_MIN <= p.willingness_to_pay <= W_MAX and math.isfinite(p.willingness_to_pay) for p in pacers)
