"""The Redis that compose and Kubernetes start, started here as they start it (a real redis-server with the
deploy files' own command line, on 127.0.0.1): it requires the password the gateway's URL carries, it
never evicts, and it persists every write before it answers (the usage log's exactly-once promise)."""

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from routeyard.testing.server_thread import free_port
from tests.deploy.deploy_files import (
    compose,
    container_environment,
    filled_env_file,
    gateway_container,
    interpolate,
    pod_spec,
    redis_statefulset,
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
PASSWORD = filled_env_file()["REDIS_PASSWORD"]
EXPECTED_CONFIG = {
    "appendonly": "yes",
    "appendfsync": "always",  # persisted before the reply: an acknowledged batch survives a crash
    "maxmemory-policy": "noeviction",
}


def client(port: int, password: str | None) -> redis.Redis:
    """A client of Redis on ``port`` that reports a refusal at once (no retries)."""
    return redis.Redis(port=port, password=password, socket_timeout=2, retry=Retry(NoBackoff(), 0))


@contextlib.contextmanager
def running(command: list[str], environment: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running until the block ends; waits (≤ 10 s) until Redis answers the password."""
    process = subprocess.Popen(
        command, env={**os.environ, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        authenticated = client(port, PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            with contextlib.suppress(redis.ConnectionError):
                if authenticated.ping():
                    break
            assert time.monotonic() < deadline, "redis-server did not answer in 10 s"
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def compose_redis_command(port: int, directory: Path) -> list[str]:
    """compose's Redis command, interpolated, listening on ``port`` in ``directory`` instead."""
    command = [
        interpolate(str(arg), {"REDIS_PASSWORD": PASSWORD})
        for arg in compose()["services"]["redis"]["command"]
    ]
    return [*command, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]


def kubernetes_redis_command(port: int, directory: Path) -> list[str]:
    """The StatefulSet's Redis command, data in ``directory`` and listening on ``port`` instead."""
    (container,) = pod_spec(redis_statefulset())["containers"]
    shell, flag, script = container["command"]
    assert (shell, flag) == ("sh", "-c") and "--dir /data" in script
    return [shell, flag, script.replace("--dir /data", f"--dir {directory} --port {port} --bind 127.0.0.1")]


def assert_hardened(port: int, gateway_url: str) -> None:
    """Redis on ``port`` requires the password, which ``gateway_url`` carries, and is configured durable."""
    with pytest.raises(redis.AuthenticationError):
        client(port, None).ping()
    with pytest.raises(redis.AuthenticationError):
        client(port, "not-" + PASSWORD).ping()
    gateway = redis.Redis.from_url(gateway_url, socket_timeout=2)
    assert gateway.ping()
    config = gateway.config_get("*")
    assert {name: config[name] for name in EXPECTED_CONFIG} == EXPECTED_CONFIG
    assert int(config["maxmemory"] or 0) >= 512 * 2**20  # a bound, and room for the capped usage streams


def test_compose_redis_requires_the_gateway_password_and_persists_every_write(tmp_path):
    port = free_port()
    url = interpolate(
        compose()["services"]["gateway"]["environment"]["ROUTEYARD_REDIS_URL"], {"REDIS_PASSWORD": PASSWORD}
    )
    with running(compose_redis_command(port, tmp_path), {}, port):
        assert_hardened(port, url.replace("@redis:6379", f"@127.0.0.1:{port}"))


def test_kubernetes_redis_requires_the_gateway_password_and_persists_every_write(tmp_path):
    port = free_port()
    url = container_environment(gateway_container(), filled_env_file())["ROUTEYARD_REDIS_URL"]
    (container,) = pod_spec(redis_statefulset())["containers"]
    environment = container_environment(container, filled_env_file())
    with running(kubernetes_redis_command(port, tmp_path), environment, port):
        assert_hardened(port, url.replace("@routeyard-redis:6379", f"@127.0.0.1:{port}"))


def test_kubernetes_redis_refuses_to_start_with_an_empty_password(tmp_path):
    (container,) = pod_spec(redis_statefulset())["containers"]
    environment = {**container_environment(container, {**filled_env_file(), "REDIS_PASSWORD": ""})}
    result = subprocess.run(
        kubernetes_redis_command(free_port(), tmp_path),
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode != 0 and "REDIS_PASSWORD" in result.stderr  # not a Redis open to anyone
