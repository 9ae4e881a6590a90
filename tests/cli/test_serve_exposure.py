"""`routeyard serve` safe to expose, run as a user runs it (a subprocess).

A non-loopback ``--host`` without client keys is refused with the way out; ``--insecure-no-auth`` serves
anyway and warns at every start, in each worker too; with client keys it serves without a warning. The
header deadline is in force in one process and in workers; with ``metrics_port`` each worker's metrics are
on a port of their own, without a key.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from routeyard.cli.serve_command import is_loopback
from routeyard.testing.server_thread import free_port
from tests.cli.test_serve import _stop, _wait_until, _wait_until_ready, _worker_processes

ROUTEYARD = Path(sys.executable).parent / "routeyard"
WARNING = "serving WITHOUT client keys on 0.0.0.0"
HEADER_TIMEOUT = 1.0
START_SECONDS = 180  # a worker imports torch: slow beside other jobs on a small machine


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Settings with one backend (never called: these tests do not chat) and a 1 s header deadline."""
    path = tmp_path / "routeyard.yaml"
    backend = {"name": "echo", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "echo"}
    path.write_text(yaml.safe_dump({"backends": [backend], "header_timeout_seconds": HEADER_TIMEOUT}))
    return path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_a_non_loopback_host_without_client_keys_is_refused_with_the_way_out(config, host):
    done = subprocess.run(
        [str(ROUTEYARD), "serve", "--config", str(config), "--host", host, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    message = done.stderr
    assert f"--host {host}" in message and "not a loopback address" in message
    assert "client_keys_env" in message and "virtual_keys" in message and "--insecure-no-auth" in message


def test_the_demo_is_refused_before_it_is_built(tmp_path):
    cache = tmp_path / "cache"
    done = subprocess.run(
        [str(ROUTEYARD), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env={**os.environ, "ROUTEYARD_CACHE_DIR": str(cache)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--insecure-no-auth" in done.stderr
    assert not (cache / "demo").exists()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("gateway.internal", False),
    ],
)
def test_which_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_insecure_no_auth_serves_warns_and_keeps_the_header_deadline(config, tmp_path):
    port = free_port()
    process, out, err = _serve(
        config, tmp_path, "--host", "0.0.0.0", "--port", str(port), "--insecure-no-auth"
    )
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=START_SECONDS, log=err)
        assert "WARNING" in err.read_text() and WARNING in err.read_text()
        assert f"http://0.0.0.0:{port}/v1" in out.read_text()
        answer, closed_after = _slow_headers(port)
    finally:
        _stop(process, [])
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in answer
    assert closed_after <= HEADER_TIMEOUT + 10


def test_insecure_no_auth_warns_in_each_worker_and_they_keep_the_header_deadline(config, tmp_path):
    port = free_port()
    process, _, err = _serve(
        config, tmp_path, "--host", "0.0.0.0", "--port", str(port), "--workers", "2", "--insecure-no-auth"
    )
    workers: list[int] = []
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=START_SECONDS, log=err)
        # one WARNING log line from serve, one from each worker as it starts
        warned = lambda: len(re.findall(rf"WARNING routeyard.serve: {WARNING}", err.read_text())) == 3  # noqa: E731
        _wait_until(warned, time.monotonic() + START_SECONDS, err, process)
        workers = _worker_processes(process.pid)
        answers = [_slow_headers(port) for _ in range(4)]  # the socket is shared: both workers are likely hit
    finally:
        _stop(process, workers)
    assert all(a.startswith(b"HTTP/1.1 408 ") and closed <= HEADER_TIMEOUT + 10 for a, closed in answers)


def test_with_client_keys_a_non_loopback_host_serves_without_a_warning(tmp_path):
    port = free_port()
    path = tmp_path / "routeyard.yaml"
    backend = {"name": "echo", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "echo"}
    path.write_text(yaml.safe_dump({"backends": [backend], "client_keys_env": "TEST_CLIENT_KEYS"}))
    env = {"TEST_CLIENT_KEYS": "sk-client-1"}
    process, out, err = _serve(path, tmp_path, "--host", "0.0.0.0", "--port", str(port), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, timeout=START_SECONDS, log=err)
        without_key = httpx.get(url + "/v1/models", timeout=10)
        with_key = httpx.get(url + "/v1/models", headers={"Authorization": "Bearer sk-client-1"}, timeout=10)
    finally:
        _stop(process, [])
    assert without_key.status_code == 401 and with_key.status_code == 200
    assert "WITHOUT client keys" not in err.read_text()
    assert 'api_key="<a client key>"' in out.read_text()


def test_each_worker_serves_its_metrics_on_its_own_port_without_a_key(tmp_path):
    port, metrics_port = free_port(), _two_free_ports()
    path = tmp_path / "routeyard.yaml"
    backend = {"name": "echo", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "echo"}
    path.write_text(yaml.safe_dump({"backends": [backend], "metrics_port": metrics_port}))
    process, out, err = _serve(path, tmp_path, "--port", str(port), "--workers", "2")
    workers: list[int] = []
    try:
        _wait_until_ready(f"http://127.0.0.1:{port}", process, timeout=START_SECONDS, log=err)
        workers = _worker_processes(process.pid)
        urls = [f"http://127.0.0.1:{p}/metrics" for p in (metrics_port, metrics_port + 1)]
        _wait_until(lambda: all(_answers(u) for u in urls), time.monotonic() + START_SECONDS, err, process)
        scrapes = [httpx.get(u, timeout=10) for u in urls]
        on_api_port = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        os.kill(workers[0], signal.SIGKILL)  # its replacement takes its slot, so its port
        _wait_until(
            lambda: len(set(_worker_processes(process.pid)) - {workers[0]}) == 2,
            time.monotonic() + START_SECONDS,
            err,
            process,
        )
        workers = _worker_processes(process.pid)
        _wait_until(lambda: all(_answers(u) for u in urls), time.monotonic() + START_SECONDS, err, process)
    finally:
        _stop(process, workers)
    assert all(s.status_code == 200 and "routeyard_requests_total" in s.text for s in scrapes)
    assert on_api_port.status_code == 404
    assert (
        f"http://127.0.0.1:{metrics_port}/metrics … http://127.0.0.1:{metrics_port + 1}/metrics"
        in out.read_text()
    )


def _serve(
    config: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """``routeyard serve --config config *args``; the process, and the files its stdout and stderr go to."""
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [str(ROUTEYARD), "serve", "--config", str(config), *args],
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=stderr,
        )
    return process, out, err


def _slow_headers(port: int) -> tuple[bytes, float]:
    """Open a connection to the gateway and send a request's headers one byte per 0.2 s until it answers or
    closes (at most 30 s); what it answered, and after how many seconds it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        opened = time.monotonic()
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        answer = b""
        while time.monotonic() - opened < 30:
            connection.settimeout(0.2)
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                connection.sendall(b"a")
                continue
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer, time.monotonic() - opened


def _two_free_ports() -> int:
    """A port P such that P and P + 1 were both free a moment ago."""
    for _ in range(100):
        port = free_port()
        if port < 65535 and _free(port + 1):
            return port
    pytest.fail("no two consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
