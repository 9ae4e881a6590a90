"""``start_metrics_server``: a registry's metrics over real HTTP on a port of their own, at scrape time."""

import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from routeyard.gateway.metrics_server import start_metrics_server


@pytest.fixture
def registry_and_counter() -> tuple[CollectorRegistry, Counter]:
    registry = CollectorRegistry()
    return registry, Counter(
        "routeyard_test_requests", "Requests seen by the test", ["backend"], registry=registry
    )


def test_metrics_are_served_without_a_key_as_they_are_at_each_scrape(registry_and_counter):
    registry, counter = registry_and_counter
    counter.labels("cheap").inc(3)
    server = start_metrics_server(registry, "127.0.0.1", 0)
    try:
        first = httpx.get(server.url, timeout=10)
        counter.labels("cheap").inc(2)
        second = httpx.get(server.url, timeout=10)
    finally:
        server.close()
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    assert 'routeyard_test_requests_total{backend="cheap"} 3.0' in first.text.splitlines()
    assert 'routeyard_test_requests_total{backend="cheap"} 5.0' in second.text.splitlines()


def test_after_close_the_port_refuses_connections_and_can_be_bound_again(registry_and_counter):
    registry, _ = registry_and_counter
    server = start_metrics_server(registry, "127.0.0.1", 0)
    url, port = server.url, server.port
    server.close()
    server.close()  # a second close does nothing
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=10)
    again = start_metrics_server(registry, "127.0.0.1", port)
    try:
        assert httpx.get(again.url, timeout=10).status_code == 200
    finally:
        again.close()


def test_a_taken_port_raises_oserror(registry_and_counter):
    registry, _ = registry_and_counter
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(OSError):
        start_metrics_server(registry, "127.0.0.1", taken.getsockname()[1])


def test_an_ipv6_host_is_bound_and_bracketed_in_the_url(registry_and_counter):
    registry, counter = registry_and_counter
    counter.labels("dear").inc()
    try:
        server = start_metrics_server(registry, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert server.url == f"http://[::1]:{server.port}/metrics"
        assert 'routeyard_test_requests_total{backend="dear"} 1.0' in httpx.get(server.url, timeout=10).text
    finally:
        server.close()
