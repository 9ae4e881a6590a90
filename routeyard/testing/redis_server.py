"""A real ``redis-server`` on 127.0.0.1 for tests and benchmarks: a free port, a private directory.

Append-only persistence (fsync every write, before the reply) is on, so a server stopped — or killed —
and started again on the same port and directory comes back with everything it acknowledged: what
"Redis went down and came back" means in production.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import redis

from routeyard.testing.server_thread import free_port


class RedisServer:
    """``start()`` / ``stop()`` a redis-server in ``directory``; :attr:`url` survives restarts. With
    ``password`` the server requires it (``requirepass``) and :attr:`url` carries it."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.password = password
        credentials = f":{urllib.parse.quote(password, safe='')}@" if password else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        """Start the server and wait (≤ 10 s) until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += [
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--protected-mode",
            "no",
        ]
        if self.password:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then wait): it finishes its writes and closes the files."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def kill(self) -> None:
        """Kill the server (SIGKILL, then wait): a crash. What it had acknowledged is on disk (fsync
        every write), whatever it was doing after that is lost."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> redis.Redis:
        """A client that decodes responses to str."""
        return redis.Redis.from_url(self.url, decode_responses=True)
