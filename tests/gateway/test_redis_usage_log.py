"""The Redis usage log against a real redis-server: records and counters, outages, feedback to training."""

import asyncio
import json
import time

import httpx
import openai
import pytest

from benchmarks.redis_server import RedisServer
from gateway.redis_usage_log import RedisUsageLog
from gateway.usage import RouteRecord
from predictor.long_format import load_long_table
from routeyard.cli import main
from tests.gateway.conftest import MATH, POEMS, gateway_settings, start_gateway


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch, **overrides):
    settings = gateway_settings(upstream.url, artifact, redis_url=redis_server.url, **overrides)
    return start_gateway(settings, tmp_path, monkeypatch)


def wait_until_written(log, timeout=30.0):
    deadline = time.monotonic() + timeout
    while log.buffered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.buffered == 0, f"{log.buffered} records still buffered"


async def burst(url, count, model="router-knn"):
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    replies = await asyncio.gather(
        *[
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": (MATH + POEMS)[i % 80]}]
            )
            for i in range(count)
        ]
    )
    await client.close()
    return replies


def test_records_and_counters_are_right_under_concurrent_load(
    redis_server, upstream, artifact, tmp_path, monkeypatch
):
    app, server = gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch)
    try:
        replies = asyncio.run(burst(server.url, 60))
        wait_until_written(app.state.usage_log)
    finally:
        server.__exit__(None, None, None)
    redis = redis_server.client()
    entries = redis.xrange("routeyard:requests")
    assert len(entries) == 60
    by_id = {fields["request_id"]: fields for _, fields in entries}
    for reply in replies:
        routing = reply.model_extra["routing"]
        fields = by_id[routing["request_id"]]
        assert fields["backend"] == routing["backend"] and fields["router"] == "router-knn"
        assert float(fields["cost_usd"]) == pytest.approx(routing["cost_usd"])
        assert json.loads(fields["attempts"])[0]["backend"] == routing["backend"]
        assert "prompt_turns" not in fields and len(fields["prompt_sha256"]) == 64  # no text by default
    spend = {k: float(v) for k, v in redis.hgetall("routeyard:spend_usd:backend").items()}
    expected: dict[str, float] = {}
    for reply in replies:
        routing = reply.model_extra["routing"]
        expected[routing["backend"]] = expected.get(routing["backend"], 0.0) + routing["cost_usd"]
    assert spend == pytest.approx(expected)
    assert redis.hgetall("routeyard:requests:router") == {"router-knn": "60"}
    assert sum(int(v) for v in redis.hgetall("routeyard:requests:day").values()) == 60


def test_redis_going_down_mid_load_loses_no_request_and_no_record(
    redis_server, upstream, artifact, tmp_path, monkeypatch
):
    app, server = gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch)
    log = app.state.usage_log
    try:
        asyncio.run(burst(server.url, 20))
        wait_until_written(log)
        redis_server.stop()
        during = asyncio.run(burst(server.url, 30))  # every request still answered
        assert len(during) == 30 and log.buffered >= 1
        redis_server.start()
        wait_until_written(log)
    finally:
        server.__exit__(None, None, None)
    assert log.dropped == 0
    assert redis_server.client().xlen("routeyard:requests") == 50


def test_a_full_buffer_drops_and_counts_instead_of_growing(tmp_path):
    async def fill():
        log = RedisUsageLog("redis://127.0.0.1:1/0", buffer_size=5)  # nothing listens on port 1
        await log.start()
        for i in range(8):
            log.record(RouteRecord(f"req_{i}", 0.0, None, "b", 200, "0" * 64))
        log.feedback("req_0", 0.5)
        await asyncio.sleep(0.1)
        state = (log.buffered, log.dropped)
        await log.close(timeout=0.2)
        return state

    assert asyncio.run(fill()) == (5, 4)


def test_feedback_round_trips_into_export_and_a_retrained_predictor(
    redis_server, upstream, artifact, tmp_path, monkeypatch, capsys
):
    app, server = gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch, store_prompts=True)
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    rated = {}
    try:
        for i, prompt in enumerate(MATH[:30] + POEMS[:10]):
            model = "cheap" if i % 2 else "dear"
            reply = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}]
            )
            request_id = (reply.model_extra or {})["routing"]["request_id"]
            quality = 1.0 if (model == "dear" or prompt in MATH) else 0.0
            response = httpx.post(
                server.url + "/v1/feedback", json={"request_id": request_id, "quality": quality}
            )
            assert response.status_code == 202
            rated[request_id] = (prompt, model, quality)
        client.chat.completions.create(model="cheap", messages=[{"role": "user", "content": "unrated"}])
        wait_until_written(app.state.usage_log)
    finally:
        server.__exit__(None, None, None)

    exported = tmp_path / "traffic.csv"
    assert main(["export", "--redis", redis_server.url, "--out", str(exported)]) == 0
    assert "wrote 40 rated requests of 2 backends" in capsys.readouterr().out
    table = load_long_table(exported)
    assert set(table.sample_ids) == set(rated)
    for row, request_id in enumerate(table.sample_ids):
        prompt, model, quality = rated[request_id]
        column = table.models.index(model)
        assert table.prompts[row] == (prompt,) and table.quality[row, column] == quality
        assert table.missing[row].sum() == 1  # only the backend that answered is known

    artifact_out = tmp_path / "retrained"
    args = ["train", "--data", str(exported), "--format", "long", "--embedder", "hashing"]
    assert main([*args, "--k", "3", "--train-fraction", "1.0", "--out", str(artifact_out)]) == 0
    manifest = json.loads((artifact_out / "manifest.json").read_text())
    assert sorted(manifest["models"]) == ["cheap", "dear"]
    assert "trained knn on 40 of 40 prompts" in capsys.readouterr().out
