"""The ops dashboard, rendered by headless Chromium after real traffic: it shows the real numbers."""

import re
import shutil
import subprocess

import httpx
import openai
import pytest

from tests.gateway.conftest import MATH, POEMS, gateway_settings, start_gateway


@pytest.fixture(scope="module")
def busy_gateway(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(
        gateway_settings(upstream.url, artifact), tmp_path_factory.mktemp("dash"), monkeypatch
    )
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    for prompt in MATH[:6] + POEMS[:3]:
        client.chat.completions.create(model="router-knn", messages=[{"role": "user", "content": prompt}])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def chromium(*args):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("headless Chromium is needed: apt-get install -y chromium (make test installs it)")
    command = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_the_stats_endpoint_sums_up_the_traffic(busy_gateway):
    stats = httpx.get(busy_gateway.url + "/v1/stats").json()
    assert stats["requests"] == 10 and stats["errors"] == 1
    assert stats["by_router"] == {"router-knn": 9}
    assert stats["by_backend"] == {"cheap": 6, "dear": 3}
    assert stats["errors_by_status"] == {"502": 1}
    assert stats["saved_usd"] > 0 and stats["spend_usd"] > 0
    assert stats["latency_ms"]["p50"] > 0
    assert stats["live"] == {}  # nothing explored


def test_headless_chromium_shows_the_numbers_and_takes_a_screenshot(busy_gateway, tmp_path, record_property):
    dom = chromium("--dump-dom", busy_gateway.url + "/dashboard").stdout
    assert re.search(r'id="requests">10<', dom)
    assert re.search(r'id="errors">1<', dom)
    assert "cheap" in dom and "dear" in dom and "router-knn" in dom
    assert 'class="empty">no explored requests yet:' in dom  # the live AIQ panel, before any explored request
    screenshot = tmp_path / "dashboard.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1400,800", busy_gateway.url + "/dashboard")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    record_property("dashboard_screenshot", str(screenshot))
    print(f"dashboard screenshot: {screenshot}")


def chart(dom, name):
    """The markup of the dashboard's ``name`` chart (its <svg>) in ``dom``."""
    found = re.search(rf'<svg class="timeline-chart" data-chart="{name}".*?</svg>', dom, re.S)
    assert found, f"no {name} chart in the dashboard"
    return found.group(0)


def drawn(svg, series):
    """The sum of the values drawn for ``series`` in ``svg`` (bars and dots carry data-value)."""
    return sum(
        float(v) for v in re.findall(rf'data-series="{re.escape(series)}" data-value="([0-9.e-]+)"', svg)
    )


def legends(svg):
    """The texts of ``svg``'s legend."""
    return re.findall(r'<text class="legend"[^>]*>([^<]*)</text>', svg)


def test_the_stats_timeline_counts_the_traffic_per_minute(busy_gateway):
    timeline = httpx.get(busy_gateway.url + "/v1/stats").json()["timeline"]
    assert len(timeline["minutes"]) == 60 and all(
        len(v) == 60 for v in timeline["requests_by_backend"].values()
    )
    assert sum(timeline["requests"]) == 10 and sum(timeline["errors"]) == 1
    assert {b: sum(v) for b, v in timeline["requests_by_backend"].items()} == {
        "cheap": 6,
        "dear": 3,
        "no backend": 1,
    }
    assert sum(sum(v) for v in timeline["spend_usd_by_backend"].values()) == pytest.approx(
        httpx.get(busy_gateway.url + "/v1/stats").json()["spend_usd"]
    )
    routing = {(r, b): sum(v) for r, bs in timeline["routing"].items() for b, v in bs.items()}
    assert routing == {
        ("router-knn", "cheap"): 6,
        ("router-knn", "dear"): 3,
        ("direct", "no backend"): 1,
    }  # none answered
    assert any(p is not None and p > 0 for p in timeline["latency_ms"]["p99"])


def test_headless_chromium_draws_the_four_charts_with_data(busy_gateway, tmp_path, record_property):
    dom = chromium("--dump-dom", busy_gateway.url + "/dashboard").stdout
    requests, latency, errors, routing = (chart(dom, n) for n in ("requests", "latency", "errors", "routing"))
    assert (
        drawn(requests, "cheap") == 6 and drawn(requests, "dear") == 3 and drawn(requests, "no backend") == 1
    )
    assert '<polyline class="line" data-series="spend"' in requests
    assert any(re.fullmatch(r"cheap 6 · \$[0-9.e-]+", text) for text in legends(requests))
    assert drawn(latency, "p50") > 0 and drawn(latency, "p99") >= drawn(latency, "p50")
    assert legends(latency) == ["p50", "p99"]
    assert 0 < drawn(errors, "error rate") <= 1
    assert drawn(routing, "router-knn → cheap") == 6 and drawn(routing, "direct → no backend") == 1
    assert "router-knn → dear 3" in legends(routing)
    for svg in (requests, latency, errors, routing):
        assert 'class="x-tick"' in svg and 'class="y-tick"' in svg  # both axes labelled
    assert "errors: 1 of 10 requests · 10.0 %" in dom
    screenshot = tmp_path / "dashboard-timeline.png"
    chromium(f"--screenshot={screenshot}", "--window-size=1400,1300", busy_gateway.url + "/dashboard")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    record_property("timeline_screenshot", str(screenshot))
    print(f"dashboard timeline screenshot: {screenshot}")
