"""The Redis usage log against a real redis-server: records and counters, outages, feedback to training."""

import asyncio
import hashlib
import json
import time
from collections import Counter, defaultdict

import httpx
import openai
import pytest

from routeyard.cli.main import main
from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.usage import ExplorationRecord, RouteRecord
from routeyard.predictor.artifact import load_artifact
from routeyard.predictor.embedder import embedding_text
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import MATH, POEMS, gateway_settings, redis_log, start_gateway


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch, **overrides):
    settings = gateway_settings(upstream.url, artifact, **{"redis_url": redis_server.url, **overrides})
    return start_gateway(settings, tmp_path, monkeypatch)


def wait_until_written(log, timeout=30.0):
    deadline = time.monotonic() + timeout
    while log.buffered and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.buffered == 0, f"{log.buffered} records still buffered"


async def burst(url, count, model="router-knn", keys=("unused",)):
    """``count`` concurrent requests, the i-th sent with key ``keys[i % len(keys)]``: (key, reply) pairs."""
    clients = [openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) for key in keys]
    replies = await asyncio.gather(
        *[
            clients[i % len(keys)].chat.completions.create(
                model=model, messages=[{"role": "user", "content": (MATH + POEMS)[i % 80]}]
            )
            for i in range(count)
        ]
    )
    for client in clients:
        await client.close()
    return [(keys[i % len(keys)], reply) for i, reply in enumerate(replies)]


def key_id(key):
    """The id the gateway logs for a client key (see routeyard.gateway.app._authorize)."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def floats(mapping):
    return {name: float(v) for name, v in mapping.items()}


def test_records_and_counters_are_right_under_concurrent_load(
    redis_server, upstream, artifact, tmp_path, monkeypatch
):
    keys = ("sk-client-one", "sk-client-two", "sk-client-three")
    monkeypatch.setenv("ROUTEYARD_TEST_CLIENT_KEYS", ",".join(keys))
    app, server = gateway_on(
        redis_server, upstream, artifact, tmp_path, monkeypatch, client_keys_env="ROUTEYARD_TEST_CLIENT_KEYS"
    )
    try:
        sent = asyncio.run(burst(server.url, 60, keys=keys))
        wait_until_written(redis_log(app))
    finally:
        server.__exit__(None, None, None)
    redis = redis_server.client()
    entries = redis.xrange("routeyard:requests")
    assert len(entries) == 60
    by_id = {fields["request_id"]: fields for _, fields in entries}
    spend: defaultdict[tuple[str, str], float] = defaultdict(float)
    count: Counter[tuple[str, str]] = Counter()  # by (counter, name), from the replies
    for key, reply in sent:
        routing = reply.model_extra["routing"]
        fields = by_id[routing["request_id"]]
        assert fields["backend"] == routing["backend"] and fields["router"] == "router-knn"
        assert fields["status"] == "200" and fields["client"] == key_id(key)
        assert float(fields["cost_usd"]) == pytest.approx(routing["cost_usd"])
        assert int(fields["prompt_tokens"]) == reply.usage.prompt_tokens == 10
        assert int(fields["completion_tokens"]) == reply.usage.completion_tokens > 0
        assert 0 < float(fields["routing_seconds"]) < float(fields["total_seconds"]) < 30
        assert float(fields["predicted_quality"]) == pytest.approx(routing["predicted_quality"])
        [attempt] = json.loads(fields["attempts"])
        assert attempt["backend"] == routing["backend"] and attempt["status"] == "ok"
        assert 0 < attempt["latency_seconds"] <= float(fields["total_seconds"])
        assert "prompt_turns" not in fields and len(fields["prompt_sha256"]) == 64  # no text by default
        day = time.strftime("%Y-%m-%d", time.gmtime(float(fields["time"])))
        named = {"backend": routing["backend"], "router": "router-knn", "client": key_id(key), "day": day}
        for counter, name in named.items():
            spend[counter, name] += routing["cost_usd"]
            count[counter, name] += 1
    for counter in ("backend", "router", "client", "day"):
        expected_spend = {name: v for (c, name), v in spend.items() if c == counter}
        expected_count = {name: str(v) for (c, name), v in count.items() if c == counter}
        assert floats(redis.hgetall(f"routeyard:spend_usd:{counter}")) == pytest.approx(expected_spend)
        assert redis.hgetall(f"routeyard:requests:{counter}") == expected_count
    assert redis.hgetall("routeyard:requests:router") == {"router-knn": "60"}
    assert sorted(redis.hgetall("routeyard:requests:client").values()) == ["20", "20", "20"]
    assert len(redis.hgetall("routeyard:requests:backend")) == 2  # math went cheap, poems dear


def test_redis_going_down_mid_load_loses_no_request_and_no_record(
    redis_server, upstream, artifact, tmp_path, monkeypatch
):
    app, server = gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch)
    log = redis_log(app)
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


def test_explored_answers_land_in_their_stream_and_count_what_exploring_spent(redis_server):
    day = time.strftime("%Y-%m-%d", time.gmtime(0.0))

    def answer(backend, chosen, cost, grading):
        propensity = 1.0 if chosen else 0.5
        candidates = ("cheap", "dear", "mid")
        return ExplorationRecord(
            "req_1", 0.0, "router-knn", backend, chosen, propensity, candidates, 1.0, cost, grading, "0" * 64
        )

    async def write():
        log = RedisUsageLog(redis_server.url)
        await log.start()
        log.explored(answer("cheap", True, 0.001, 0.0005))
        log.explored(answer("dear", False, 0.02, 0.0005))
        await log.close()
        return log.written, log.dropped

    assert asyncio.run(write()) == (2, 0)
    client = redis_server.client()
    entries = client.xrange("routeyard:explored")
    assert [e["backend"] for _, e in entries] == ["cheap", "dear"]
    assert json.loads(entries[1][1]["candidates"]) == ["cheap", "dear", "mid"]
    assert entries[1][1]["chosen"] == "0" and float(entries[1][1]["propensity"]) == 0.5
    assert floats(client.hgetall("routeyard:spend_usd:backend")) == {"dear": 0.02}  # cheap: its request's
    assert floats(client.hgetall("routeyard:spend_usd:router")) == {"router-knn": pytest.approx(0.021)}
    assert floats(client.hgetall("routeyard:spend_usd:day")) == {day: pytest.approx(0.021)}
    assert client.exists("routeyard:requests:router", "routeyard:requests:backend") == 0


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
        wait_until_written(redis_log(app))
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
    # --no-search: the request ids are random, so CV folds (grouped by them) and a Zero guard fitted on
    # them would vary from run to run; this test is about learning from the feedback, not selection
    pinned = ["--k", "3", "--no-search", "--train-fraction", "1.0"]
    assert main([*args, *pinned, "--out", str(artifact_out)]) == 0
    assert "trained knn on 40 of 40 prompts" in capsys.readouterr().out
    predictor, manifest = load_artifact(artifact_out, HashingEmbedder())  # what the gateway would load
    assert sorted(manifest.models) == ["cheap", "dear"]
    cheap, dear = manifest.models.index("cheap"), manifest.models.index("dear")
    asked = [MATH[1], "Write a sonnet about the cat in the moonlight, with rhymes."]
    predicted = predictor.predict(HashingEmbedder().embed([embedding_text((p,)) for p in asked]))
    assert predicted.quality.shape == predicted.cost.shape == (2, 2)
    # the cheap model was rated right on arithmetic and wrong on every cat sonnet it wrote (the
    # predictor shrinks towards the mean, so the gap is what it learned, not 1 − 0)
    assert predicted.quality[0, cheap] - predicted.quality[1, cheap] > 0.3
    assert predicted.quality[1, dear] > predicted.quality[1, cheap]  # poems: the dear model is better
    assert (predicted.cost >= 0).all() and predicted.cost[0, cheap] > 0
