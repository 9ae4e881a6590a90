"""The edges of a request's life: refused before routing, an internal error, a client that hangs up
mid-stream, routers that cannot load. Each is answered clearly, counted, and leaks nothing into logs."""

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import httpx
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from routeyard.gateway.app import create_app
from routeyard.gateway.internal_errors import InternalErrors
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import load_settings
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, gateway_settings, memory_log, start_gateway

SECRET_PROMPT = "my card number is 4111-SECRET-PROMPT"


@pytest.fixture(scope="module")
def gateway_app_and_server(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(
        gateway_settings(upstream.url, artifact), tmp_path_factory.mktemp("lifecycle"), monkeypatch
    )
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def gateway(gateway_app_and_server):
    return gateway_app_and_server[1]


def requests_total(url, status):
    text = httpx.get(url + "/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "routeyard_requests_total"
        and s.labels == {"router": "direct", "backend": "none", "status": status}
    )


def test_requests_refused_before_routing_are_counted_as_errors(gateway):
    before = {status: requests_total(gateway.url, status) for status in ("400", "404")}
    errors_before = httpx.get(gateway.url + "/v1/stats").json()["errors_by_status"]
    json_type = {"content-type": "application/json"}
    httpx.post(gateway.url + "/v1/chat/completions", content=b"{not json", headers=json_type)
    httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert requests_total(gateway.url, "400") == before["400"] + 1
    assert requests_total(gateway.url, "404") == before["404"] + 1
    errors = httpx.get(gateway.url + "/v1/stats").json()["errors_by_status"]
    assert errors.get("400", 0) == errors_before.get("400", 0) + 1
    assert errors.get("404", 0) == errors_before.get("404", 0) + 1


def test_every_record_says_whether_the_client_asked_for_a_stream_answered_or_not(gateway_app_and_server):
    app, server = gateway_app_and_server
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    hi: Any = [{"role": "user", "content": "hi"}]
    records = []
    for model, stream in [("cheap", False), ("cheap", True), ("broken", False), ("broken", True)]:
        logged = len(memory_log(app).records)
        with contextlib.suppress(openai.InternalServerError):  # "broken" answers 502
            if stream:
                list(client.chat.completions.create(model=model, messages=hi, stream=True))
            else:
                client.chat.completions.create(model=model, messages=hi)
        wait_until(lambda n=logged: len(memory_log(app).records) > n)
        records.append(memory_log(app).records[-1])
    assert [(r.router, r.backend, r.status, r.streamed) for r in records] == [
        (None, "cheap", 200, False),
        (None, "cheap", 200, True),
        (None, None, 502, False),
        (None, None, 502, True),  # failed before its first chunk: still a streamed request
    ]
    assert httpx.get(server.url + "/v1/stats").json()["by_router"]["direct"] >= 2  # no router: "direct"


def test_a_willingness_to_pay_suffix_may_be_in_scientific_notation_but_not_negative(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    poem: Any = [{"role": "user", "content": "Write a sonnet about the sea in the moonlight, with rhymes."}]
    stingy = client.chat.completions.create(model="router-knn-1e-7", messages=poem)
    routing = (stingy.model_extra or {})["routing"]
    assert routing["willingness_to_pay"] == 1e-7 and routing["backend"] == "cheap"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="router-knn--1", messages=poem)
    assert caught.value.code == "invalid_willingness_to_pay"


def test_json_nested_past_the_parsers_depth_is_a_400(gateway):
    body = b"[" * 5_000 + b"]" * 5_000  # under the body limit, deeper than the parser recurses
    headers = {"content-type": "application/json"}
    response = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


class FailingEmbedder(HashingEmbedder):
    """An embedder that breaks on every prompt, quoting it in its error (as real libraries may)."""

    def embed(self, texts):
        raise RuntimeError(f"cannot embed {texts[0]!r}")


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def every_log():
    """Every log line of the process: ours, and uvicorn's, which does not propagate to the root."""
    capture = LogCapture()
    capture.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    for logger in loggers:
        logger.addHandler(capture)
    yield capture.lines
    for logger in loggers:
        logger.removeHandler(capture)


def test_an_embedder_that_crashes_is_a_503_and_no_log_quotes_the_prompt(
    upstream, artifact, tmp_path, monkeypatch, every_log
):
    monkeypatch.setenv("UPSTREAM_KEY", "unused")
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(gateway_settings(upstream.url, artifact)))
    app = create_app(load_settings(path), embedder=FailingEmbedder())
    with ServerThread(app) as server:
        wait_until(lambda: runtime_of(app).ready)
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(
                model="router-knn", messages=[{"role": "user", "content": SECRET_PROMPT}]
            )
        assert caught.value.status_code == 503 and caught.value.code == "embedder_unavailable"
        assert "SECRET-PROMPT" not in caught.value.message
        assert httpx.get(server.url + "/healthz").status_code == 200  # still serving
    assert any("could not embed a prompt" in line for line in every_log)
    assert not [line for line in every_log if "SECRET-PROMPT" in line]


def test_an_unhandled_exception_is_a_500_and_its_message_is_not_logged(every_log):
    async def buggy(request: Request) -> StreamingResponse:
        raise KeyError(SECRET_PROMPT)  # a bug whose message quotes a prompt

    app = Starlette(
        routes=[Route("/bug", buggy)], middleware=[Middleware(InternalErrors)]
    )  # as in create_app
    with ServerThread(app) as server:
        response = httpx.get(server.url + "/bug")
        assert httpx.get(server.url + "/bug").status_code == 500  # still serving
    assert response.status_code == 500 and response.json()["error"]["message"] == "internal error"
    assert any("internal error KeyError" in line for line in every_log)
    assert not [line for line in every_log if "SECRET-PROMPT" in line]


def slow_stream_upstream(closed_early):
    """An upstream streaming 200 chunks 20 ms apart; notes in ``closed_early`` when a reader left."""

    async def chat(request: Request) -> StreamingResponse:
        await request.json()

        async def chunks():
            finished = False
            try:
                for i in range(200):
                    delta = {"choices": [{"index": 0, "delta": {"content": f"w{i} "}}]}
                    yield f"data: {json.dumps(delta)}\n\n"
                    await asyncio.sleep(0.02)
                yield "data: [DONE]\n\n"
                finished = True
            finally:
                closed_early.append(not finished)

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_a_client_hanging_up_mid_stream_is_logged_as_499_and_the_upstream_call_ends(
    upstream, artifact, tmp_path, monkeypatch
):
    closed_early: list[bool] = []
    with ServerThread(slow_stream_upstream(closed_early)) as slow:
        settings = gateway_settings(upstream.url, artifact)
        settings["backends"].append({"name": "slow", "base_url": slow.url + "/v1", "model": "slow"})
        app, server = start_gateway(settings, tmp_path, monkeypatch)
        try:
            client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            stream = client.chat.completions.create(
                model="slow", messages=[{"role": "user", "content": MATH[0]}], stream=True
            )
            assert next(iter(stream)).choices[0].delta.content == "w0 "
            stream.close()
            wait_until(lambda: memory_log(app).records)
            (record,) = memory_log(app).records
            assert record.status == 499 and record.backend == "slow"
            assert [a.status for a in record.attempts] == ["client_closed"]
            wait_until(lambda: closed_early)
            assert closed_early == [True]  # the gateway stopped reading the upstream, long before its end
        finally:
            server.__exit__(None, None, None)


def test_routers_that_cannot_load_leave_readyz_503_and_backends_served(
    upstream, artifact, tmp_path, monkeypatch
):
    monkeypatch.setenv("UPSTREAM_KEY", "unused")
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(gateway_settings(upstream.url, artifact)))
    app = create_app(load_settings(path), embedder=HashingEmbedder(dimension=64))  # not the artifact's
    with ServerThread(app) as server:
        wait_until(lambda: "failed" in runtime_of(app).not_ready_reason)
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503
        message = ready.json()["error"]["message"]
        assert "loading the routers failed" in message and "hashing" not in message  # no exception text
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="router-knn", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 503 and caught.value.code == "not_ready"
        reply = client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "echo: hi"


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
