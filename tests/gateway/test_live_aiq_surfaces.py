"""The live AIQ where an operator reads it: /v1/stats, /metrics and the dashboard of running gateways
(one alone, two sharing Redis) show the numbers ``live_summary`` computes from the explored requests."""

import math
import re
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeyard.evaluation.live_aiq import ExploredAnswer, LiveTally, live_summary, summary_as_dict
from routeyard.gateway.runtime import runtime_of
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import gateway_settings, start_gateway
from tests.gateway.test_dashboard import chromium

BACKENDS = {"cheap": (0.6, 0.0001), "quiet": (0.5, 0.0004), "dear": (0.9, 0.01)}  # mean quality, $


def explored_requests(count, router="router-knn", seed=3):
    """``count`` explored requests of ``router`` as ``observe``'s arguments: three candidates, the policy's
    graded choice, and one of the two others explored with propensity 1/2."""
    rng = np.random.default_rng(seed)
    names = list(BACKENDS)
    requests = []
    for _ in range(count):
        chosen, explored = (names[j] for j in rng.choice(3, size=2, replace=False, p=[0.6, 0.1, 0.3]))
        requests.append((router, names, answer(rng, chosen, 1.0), answer(rng, explored, 0.5)))
    return requests


def answer(rng, backend, propensity):
    quality, cost = BACKENDS[backend]
    return ExploredAnswer(backend, float(rng.random() < quality), cost * rng.uniform(0.5, 1.5), propensity)


def expected_summary(requests):
    tally = LiveTally()
    for _, candidates, chosen, explored in requests:
        tally.observe(candidates, chosen, explored)
    return live_summary(tally)


MANY = explored_requests(150)
ONE = explored_requests(1, router="router-fixed", seed=5)


@pytest.fixture(scope="module")
def fed_gateway(upstream, artifact, tmp_path_factory):
    """A gateway (no Redis) whose live store observed :data:`MANY` for router-knn and :data:`ONE` for
    router-fixed, as the explorer would."""
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(
        gateway_settings(upstream.url, artifact), tmp_path_factory.mktemp("live"), monkeypatch
    )
    for request in MANY + ONE:
        runtime_of(app).live_aiq.observe(*request)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def live_gauges(url):
    """{(name, frozenset(labels)): value} of the routeyard_live_* samples /metrics exposes."""
    text = httpx.get(url + "/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("routeyard_live_")
    }


def test_stats_show_each_routers_live_summary(fed_gateway):
    stats = httpx.get(fed_gateway.url + "/v1/stats").json()
    assert stats["live"] == {
        "router-knn": summary_as_dict(expected_summary(MANY)),
        "router-fixed": summary_as_dict(expected_summary(ONE)),
    }
    knn = stats["live"]["router-knn"]
    assert set(knn["backends"]) == set(BACKENDS) and knn["policy"]["quality"]["n"] == 150
    assert knn["aiq"] is not None and knn["zero_aiq"] is not None and knn["regret"] is not None
    assert stats["live"]["router-fixed"]["aiq"] is None  # one explored request: no AIQ yet


def test_metrics_export_the_live_numbers_and_leave_out_the_unknown(fed_gateway):
    gauges = live_gauges(fed_gateway.url)
    knn, one = expected_summary(MANY), expected_summary(ONE)

    def gauge(name, **labels):
        return gauges[(name, frozenset(labels.items()))]

    assert gauge("routeyard_live_aiq", router="router-knn") == pytest.approx(knn.aiq, rel=1e-12)
    assert gauge("routeyard_live_zero_aiq", router="router-knn") == pytest.approx(knn.zero_aiq, rel=1e-12)
    assert gauge("routeyard_live_regret", router="router-knn") == pytest.approx(knn.regret, rel=1e-12)
    assert gauge("routeyard_live_explored_requests", router="router-knn") == 150
    policy = knn.policy
    assert gauge("routeyard_live_policy_quality", router="router-knn") == pytest.approx(policy.quality.mean)
    assert gauge("routeyard_live_policy_cost_usd", router="router-knn") == pytest.approx(policy.cost.mean)
    for backend in knn.backends:
        labels = {"router": "router-knn", "backend": backend.name}
        low, high = backend.quality.interval
        assert gauge("routeyard_live_quality", **labels) == pytest.approx(backend.quality.mean, rel=1e-12)
        assert gauge("routeyard_live_quality_low", **labels) == pytest.approx(low, rel=1e-12)
        assert gauge("routeyard_live_quality_high", **labels) == pytest.approx(high, rel=1e-12)
        assert gauge("routeyard_live_cost_usd", **labels) == pytest.approx(backend.cost.mean, rel=1e-12)
    # router-fixed has one explored request: counted, its means shown, no AIQ and no intervals (NaN, ∞)
    assert gauge("routeyard_live_explored_requests", router="router-fixed") == 1
    assert math.isnan(one.aiq)
    fixed = {
        (name, dict(labels).get("backend")) for name, labels in gauges if ("router", "router-fixed") in labels
    }
    assert ("routeyard_live_aiq", None) not in fixed and ("routeyard_live_regret", None) not in fixed
    assert not any(name == "routeyard_live_quality_low" for name, _ in fixed)
    assert {b for name, b in fixed if name == "routeyard_live_quality"} == {b.name for b in one.backends}
    assert not any(math.isnan(value) or math.isinf(value) for value in gauges.values())


def test_the_dashboard_draws_the_live_panel_and_takes_a_screenshot(fed_gateway, tmp_path, record_property):
    knn = expected_summary(MANY)
    dom = chromium("--dump-dom", fed_gateway.url + "/dashboard").stdout
    assert 'data-router="router-knn"' in dom and 'data-router="router-fixed"' in dom
    assert all(f'data-backend="{name}"' in dom for name in BACKENDS)
    assert re.search(rf'class="live-aiq">{knn.aiq:.4f}<', dom)
    assert re.search(rf'class="live-zero-aiq">{knn.zero_aiq:.4f}<', dom)
    assert re.search(rf'class="live-regret">{knn.regret:.4f} \((beats|below) Zero\)<', dom)
    assert re.search(r'class="live-n">150<', dom)
    assert re.search(r'<polyline class="zero-hull" points="[0-9.,]+ ', dom)  # the plot, with the Zero hull
    assert 'class="empty">no explored requests yet' not in dom
    screenshot = tmp_path / "dashboard-live-aiq.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1400,1400", fed_gateway.url + "/dashboard")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    record_property("live_aiq_screenshot", str(screenshot))
    print(f"live AIQ dashboard screenshot: {screenshot}")


def test_replicas_sharing_redis_show_the_same_live_numbers(upstream, artifact, tmp_path, monkeypatch):
    redis_server = RedisServer(tmp_path / "redis").start()
    settings = gateway_settings(upstream.url, artifact, redis_url=redis_server.url)
    replicas = []
    try:
        for i in range(2):
            (tmp_path / f"replica{i}").mkdir()
            replicas.append(start_gateway(settings, tmp_path / f"replica{i}", monkeypatch))
        for i, (app, server) in enumerate(replicas):  # on the gateway's loop, as exploring does: never
            store = runtime_of(app).live_aiq  # in the middle of the store's own exchange with Redis
            server.run_on_loop(lambda store=store, i=i: [store.observe(*r) for r in MANY[i::2]])
        want = summary_as_dict(expected_summary(MANY))
        views = [wait_for_explored(server.url, 150)["router-knn"] for _, server in replicas]
        for view in views:
            assert numbers(view) == pytest.approx(numbers(want), rel=1e-9, nan_ok=True)
    finally:
        for _, server in replicas:
            server.__exit__(None, None, None)
        redis_server.stop()


def wait_for_explored(url, count, timeout=10.0):
    """/v1/stats' live numbers once router-knn's show ``count`` explored requests (≤ ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = httpx.get(url + "/v1/stats").json()["live"]
        if live.get("router-knn", {}).get("policy", {}).get("quality", {}).get("n") == count:
            return live
        time.sleep(0.1)
    raise AssertionError(f"{url}: router-knn's live numbers never counted {count} explored requests")


def numbers(summary):
    """The numbers of a ``summary_as_dict``, flattened in a fixed order (None as NaN)."""
    flat = []

    def walk(value):
        if isinstance(value, dict):
            for key in sorted(value):
                walk(value[key])
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
        else:
            flat.append(math.nan if value is None else float(value))

    walk(summary)
    return flat
