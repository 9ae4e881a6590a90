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
