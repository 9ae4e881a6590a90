"""The response cache seen by a client (official openai and anthropic SDKs against a real gateway): a
deterministic request that opted in is answered once by its upstream and then from the cache for $0,
whole or streamed, flagged in the routing object, the header, the metrics and the usage log; requests
that are not deterministic, other clients and other routers never share an answer; a semantic match
needs the prompt to be close enough; replicas sharing Redis share the cache."""

import time

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeyard.gateway.runtime import runtime_of
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import MATH, gateway_settings, memory_log, start_gateway

KEYS = "key-alice-1234,key-bob-5678"
ADMIN = "admin-key-9876"


@pytest.fixture(scope="module")
def app_and_server(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GATEWAY_KEYS", KEYS)
    monkeypatch.setenv("GATEWAY_ADMIN", ADMIN)
    settings = gateway_settings(
        upstream.url,
        artifact,
        client_keys_env="GATEWAY_KEYS",
        admin_key_env="GATEWAY_ADMIN",
        cache_semantic_threshold=0.8,
    )
    app, server = start_gateway(settings, tmp_path_factory.mktemp("cache"), monkeypatch)
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


@pytest.fixture
def gateway(app_and_server):
    return app_and_server[1]


def client(server, key="key-alice-1234"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def upstream_calls(upstream):
    return httpx.get(upstream.url + "/calls").json().get("echo", 0)


def ask(server, prompt, *, cache=True, key="key-alice-1234", model="router-knn", **fields):
    response = client(server, key).chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        extra_body={"routing": {"cache": cache}},
        **fields,
    )
    reply = response.parse()
    return reply, reply.model_extra["routing"], response.headers


def test_a_repeated_deterministic_request_is_answered_from_the_cache_for_free(
    gateway, upstream, app_and_server
):
    before = upstream_calls(upstream)
    first, routing, headers = ask(gateway, MATH[0], temperature=0)
    assert routing["cache"] == {"hit": False, "match": "exact"} and headers["x-routeyard-cache"] == "miss"
    assert routing["cost_usd"] > 0
    second, routing, headers = ask(gateway, MATH[0], temperature=0)
    assert upstream_calls(upstream) == before + 1  # the second never reached the upstream
    assert headers["x-routeyard-cache"] == "hit-exact" and headers["x-routeyard-cost-usd"] == "0"
    assert routing["cache"]["hit"] is True and routing["cache"]["match"] == "exact"
    assert routing["cache"]["saved_usd"] == pytest.approx(first.model_extra["routing"]["cost_usd"])
    assert routing["cost_usd"] == 0 and routing["attempts"] == []
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.model == first.model == "cheap"
    record = memory_log(app_and_server[0]).records[-1]
    assert record.cache == "exact" and record.cost_usd == 0 and record.backend == "cheap"


def test_a_seed_makes_a_request_cacheable_and_its_other_fields_key_it(gateway):
    ask(gateway, MATH[1], seed=7, max_tokens=20)
    _, routing, _ = ask(gateway, MATH[1], seed=7, max_tokens=20)
    assert routing["cache"]["hit"] is True
    _, routing, _ = ask(gateway, MATH[1], seed=7, max_tokens=21)  # another parameter: another answer
    assert routing["cache"] == {"hit": False, "match": "exact"}
    _, routing, _ = ask(gateway, MATH[1], seed=7, max_tokens=20, cache=False)  # opted out
    assert "cache" not in routing


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({}, "not deterministic"),
        ({"temperature": 0.7}, "not deterministic"),
        ({"temperature": 0, "n": 2}, "more than one choice"),
        (
            {
                "temperature": 0,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            },
            "tools",
        ),
    ],
)
def test_a_request_whose_answer_may_differ_is_never_cached(gateway, upstream, fields, why):
    ask(gateway, MATH[2], **fields)
    before = upstream_calls(upstream)
    _, routing, headers = ask(gateway, MATH[2], **fields)
    assert upstream_calls(upstream) == before + 1
    assert routing["cache"]["hit"] is False and why in routing["cache"]["bypass"]
    assert headers["x-routeyard-cache"] == "bypass"


def test_clients_and_routers_never_share_answers(gateway):
    ask(gateway, MATH[3], temperature=0)
    _, routing, _ = ask(gateway, MATH[3], temperature=0, key="key-bob-5678")
    assert routing["cache"]["hit"] is False
    _, routing, _ = ask(gateway, MATH[3], temperature=0, model="router-fixed")
    assert routing["cache"]["hit"] is False
    _, routing, _ = ask(gateway, MATH[3], temperature=0)
    assert routing["cache"]["hit"] is True


def test_a_streamed_answer_is_cached_and_a_hit_is_streamed(gateway, upstream):
    def stream():
        return list(
            client(gateway).chat.completions.create(
                model="router-knn",
                messages=[{"role": "user", "content": MATH[4]}],
                temperature=0,
                stream=True,
                extra_body={"routing": {"cache": True}},
            )
        )

    first = stream()
    text = "".join(c.choices[0].delta.content or "" for c in first if c.choices)
    assert first[-1].model_extra["routing"]["cache"] == {"hit": False, "match": "exact"}
    before = upstream_calls(upstream)
    second = stream()
    assert upstream_calls(upstream) == before
    assert "".join(c.choices[0].delta.content or "" for c in second if c.choices) == text
    assert second[-1].model_extra["routing"]["cache"]["hit"] is True
    whole, routing, _ = ask(gateway, MATH[4], temperature=0)  # the streamed answer serves a whole request
    assert routing["cache"]["hit"] is True and whole.choices[0].message.content == text


def test_a_semantic_match_serves_a_close_prompt_and_not_a_distant_one(gateway):
    ask(
        gateway,
        "Write a sonnet about the sea in the moonlight, with rhymes please",
        cache="semantic",
        temperature=0,
    )
    close = "Write a sonnet about the sea in the moonlight, with rhymes please"
    _, routing, headers = ask(gateway, close + " now", cache="exact", temperature=0)
    assert routing["cache"]["hit"] is False  # not the same text
    _, routing, headers = ask(gateway, close + " and a twist", cache="semantic", temperature=0)
    assert headers["x-routeyard-cache"] == "hit-semantic"
    assert routing["cache"]["match"] == "semantic" and 0.8 <= routing["cache"]["similarity"] < 1.0
    _, routing, _ = ask(gateway, MATH[9], cache="semantic", temperature=0)  # similarity ≈ 0.2
    assert routing["cache"]["hit"] is False


def test_the_anthropic_front_door_uses_the_cache(gateway):
    messages = anthropic.Anthropic(base_url=gateway.url, api_key="key-alice-1234", max_retries=0).messages

    def create():
        return messages.create(
            model="router-knn",
            max_tokens=64,
            messages=[{"role": "user", "content": MATH[5]}],
            extra_body={"temperature": 0, "routing": {"cache": True}},  # this SDK has no temperature
        )

    first, second = create(), create()
    assert first.model_extra["routing"]["cache"]["hit"] is False
    assert second.model_extra["routing"]["cache"]["hit"] is True
    assert second.content[0].text == first.content[0].text


def test_cache_results_are_counted_in_the_metrics(gateway):
    ask(gateway, MATH[6], temperature=0)
    ask(gateway, MATH[6], temperature=0)
    text = httpx.get(gateway.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counted = {s.labels["result"]: s.value for s in families["routeyard_cache_requests"].samples}
    assert counted["hit_exact"] >= 1 and counted["miss"] >= 1 and counted["bypass"] >= 1


def test_replicas_sharing_redis_share_the_cache(upstream, artifact, tmp_path, monkeypatch):
    redis_server = RedisServer(tmp_path / "redis").start()
    monkeypatch.setenv("GATEWAY_KEYS", KEYS)
    settings = gateway_settings(
        upstream.url, artifact, redis_url=redis_server.url, client_keys_env="GATEWAY_KEYS"
    )
    one_app, one = start_gateway(settings, tmp_path, monkeypatch)
    _, two = start_gateway(settings, tmp_path, monkeypatch)
    try:
        ask(one, MATH[7], temperature=0)
        deadline = time.monotonic() + 5.0  # the answer is kept in the background, after the reply
        while (
            not redis_server.client().keys("routeyard:response_cache:entry:*") and time.monotonic() < deadline
        ):
            time.sleep(0.01)
        _, routing, _ = ask(two, MATH[7], temperature=0)
        assert routing["cache"]["hit"] is True
        redis_server.stop()  # a cache that fails is a miss, never an error
        reply, routing, _ = ask(two, MATH[8], temperature=0)
        assert reply.model == "cheap" and routing["cache"]["hit"] is False
        assert runtime_of(one_app).response_cache is not None
    finally:
        one.__exit__(None, None, None)
        two.__exit__(None, None, None)
        redis_server.stop()
