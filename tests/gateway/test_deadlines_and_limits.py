"""The gateway's own deadlines and limits: a slow client body (408), the whole-request deadline (504), a
stream gone silent, requests in flight (503 overloaded), the number of messages, and what a failure to
embed a prompt becomes (503, or the configured fallback backend). Upstream-side deadlines and caps are
in tests/gateway/backends/."""

import concurrent.futures
import socket
import time
from collections.abc import Sequence

import httpx
import openai
import pytest

from routeyard.arrays import Vectors
from routeyard.gateway.app import create_app
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import GatewaySettings
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, UPSTREAM_KEY, gateway_settings, memory_log, start_gateway


def with_backend(settings, name, model, **extra):
    settings["backends"].append(
        {
            "name": name,
            "base_url": settings["backends"][0]["base_url"],
            "model": model,
            "api_key_env": "UPSTREAM_KEY",
            **extra,
        }
    )
    return settings


@pytest.fixture(scope="module")
def strict_gateway(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    settings = gateway_settings(
        upstream.url,
        artifact,
        body_timeout_seconds=1.0,
        request_timeout_seconds=1.5,
        limit_concurrency=2,
        max_messages=3,
    )
    with_backend(settings, "slow", "hang", timeout_seconds=60.0)
    with_backend(settings, "silent-stream", "trickle:5", timeout_seconds=60.0)
    app, server = start_gateway(settings, tmp_path_factory.mktemp("strict"), monkeypatch)
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=30.0)


def test_a_client_body_that_does_not_arrive_in_time_is_a_408(strict_gateway):
    _, server = strict_gateway
    with socket.create_connection(("127.0.0.1", server.port), timeout=10.0) as connection:
        connection.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 200\r\n\r\n" + b'{"model": "cheap", '
        )
        started = time.monotonic()
        answer = connection.recv(65536).decode()
        waited = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408")
    assert '"code":"request_timeout"' in answer.replace(" ", "")
    assert 0.8 <= waited < 6.0


def test_the_whole_request_deadline_is_a_504_and_is_logged(strict_gateway):
    app, server = strict_gateway
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as late:
        client_of(server).chat.completions.create(
            model="slow", messages=[{"role": "user", "content": "wait"}]
        )
    waited = time.monotonic() - started
    assert late.value.status_code == 504 and late.value.code == "request_timeout"
    assert 1.3 <= waited < 6.0
    request_id = late.value.response.headers.get("x-routeyard-request-id")
    logged = [r for r in memory_log(app).records if r.status == 504 and r.backend is None]
    assert logged and (request_id is None or any(r.request_id == request_id for r in logged))


def test_a_stream_that_goes_silent_ends_with_an_error_after_the_deadline(strict_gateway):
    _, server = strict_gateway
    stream = client_of(server).chat.completions.create(
        model="silent-stream", messages=[{"role": "user", "content": "go"}], stream=True
    )
    started = time.monotonic()
    chunks = 0
    with pytest.raises(openai.APIError) as ended:
        for _ in stream:
            chunks += 1
    assert chunks >= 1  # the first chunk came; then nothing for longer than the deadline
    assert "sent nothing" in str(ended.value)
    assert time.monotonic() - started < 8.0


def test_requests_beyond_limit_concurrency_get_a_503_overloaded_and_probes_still_answer(strict_gateway):
    _, server = strict_gateway
    client = client_of(server)

    def slow_call():
        try:
            client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "hold"}])
        except openai.APIStatusError as exc:
            return exc.status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(slow_call) for _ in range(2)]
        time.sleep(0.5)  # both in flight (each held ≈ 1.5 s by the deadline)
        refused = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "cheap", "messages": [{"role": "user", "content": "x"}]},
        )
        probe = httpx.get(server.url + "/healthz")
        statuses = [f.result() for f in held]
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["retry-after"] == "1"
    assert probe.status_code == 200 and statuses == [504, 504]
    assert (
        client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "after"}]).model
        == "cheap"
    )


def test_more_messages_than_max_messages_is_a_400(strict_gateway):
    _, server = strict_gateway
    messages = [{"role": "user", "content": f"m{i}"} for i in range(4)]
    with pytest.raises(openai.BadRequestError) as refused:
        client_of(server).chat.completions.create(model="cheap", messages=messages)
    assert refused.value.param == "messages"


def test_readyz_never_echoes_the_exception_that_failed_loading(upstream, tmp_path, monkeypatch):
    broken = tmp_path / "broken-artifact"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"kind": "knn", "secret_detail": "/srv/very/private/path"}')
    settings = gateway_settings(upstream.url, broken)
    settings["routers"] = [{"name": "router-knn", "kind": "knn", "artifact": str(broken)}]
    settings["default_router"] = "router-knn"
    try:
        _, server = start_gateway(settings, tmp_path, monkeypatch)
    except Exception:  # an artifact the settings refuse outright is also fine: nothing leaks then either
        return
    try:
        readyz = httpx.get(server.url + "/readyz")
    finally:
        server.__exit__(None, None, None)
    assert readyz.status_code == 503
    message = readyz.json()["error"]["message"]
    assert "loading the routers failed" in message and "private" not in message and "manifest" not in message


class PoisonedEmbedder(HashingEmbedder):
    """The hashing embedder, except that it fails on a text holding ``POISON``: an embedder that breaks."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        if any("POISON" in text for text in texts):
            raise RuntimeError("the embedding model crashed on POISON text")
        return super().embed(texts)


@pytest.mark.parametrize("fallback", [None, "cheap"])
def test_a_prompt_that_cannot_be_embedded_is_a_503_or_goes_to_the_fallback(
    fallback, upstream, artifact, tmp_path, monkeypatch
):
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    settings = GatewaySettings(**gateway_settings(upstream.url, artifact, embedder_fallback_backend=fallback))
    app = create_app(settings, embedder=PoisonedEmbedder())
    with ServerThread(app) as server:
        deadline = time.monotonic() + 30
        while not runtime_of(app).ready and time.monotonic() < deadline:
            time.sleep(0.02)
        client = client_of(server)
        fine = client.chat.completions.create(
            model="router-knn", messages=[{"role": "user", "content": MATH[0]}]
        )
        poisoned = {"model": "router-knn", "messages": [{"role": "user", "content": "POISON " + MATH[1]}]}
        answer = httpx.post(server.url + "/v1/chat/completions", json=poisoned)
        metrics = httpx.get(server.url + "/metrics").text
    assert fine.model_extra["routing"]["router"] == "router-knn"
    if fallback is None:
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "embedder_unavailable"
        assert "POISON" not in answer.text
    else:
        assert answer.status_code == 200 and answer.json()["model"] == "cheap"
    assert "routeyard_embedder_failures_total 1.0" in metrics


def test_the_embedder_fallback_is_not_used_for_a_request_it_cannot_serve(
    upstream, artifact, tmp_path, monkeypatch
):
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    config = gateway_settings(upstream.url, artifact, embedder_fallback_backend="cheap")
    for backend in config["backends"]:
        if backend["name"] == "cheap":
            backend["capabilities"] = {"tools": False}
    app = create_app(GatewaySettings(**config), embedder=PoisonedEmbedder())
    tool = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
    poisoned = [{"role": "user", "content": "POISON " + MATH[1]}]
    with ServerThread(app) as server:
        deadline = time.monotonic() + 30
        while not runtime_of(app).ready and time.monotonic() < deadline:
            time.sleep(0.02)
        url = server.url + "/v1/chat/completions"
        with_tools = httpx.post(url, json={"model": "router-knn", "messages": poisoned, "tools": [tool]})
        excluded = httpx.post(
            url, json={"model": "router-knn", "messages": poisoned, "routing": {"exclude": ["cheap"]}}
        )
        plain = httpx.post(url, json={"model": "router-knn", "messages": poisoned})
    for refused in (with_tools, excluded):  # the fallback cannot take it: the embedder's 503, as without one
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "embedder_unavailable"
    assert plain.status_code == 200 and plain.json()["model"] == "cheap"
