"""Session affinity seen by a client: a conversation stays on the backend that answered its first turn
(official openai and anthropic SDKs against a real gateway), unless that backend is excluded or fails;
sessions named by ``routing.session`` or ``user``; two replicas sharing Redis agree."""

import asyncio
import time

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeyard.gateway.session_affinity import RedisAffinityStore
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, POEMS, gateway_settings, start_gateway

MATH_TURN = MATH[0]  # the router sends arithmetic to cheap
POEM_TURN = POEMS[0]  # and poems to dear


@pytest.fixture(scope="module")
def gateway(upstream, artifact, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    _app, server = start_gateway(
        gateway_settings(upstream.url, artifact), tmp_path_factory.mktemp("affinity"), monkeypatch
    )
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def ask(server, messages, **routing):
    extra = {"routing": routing} if routing else None
    reply = client(server).chat.completions.create(model="router-knn", messages=messages, extra_body=extra)
    return reply, reply.model_extra["routing"]


def turns(*texts):
    """A conversation whose user turns are ``texts``, each answered (but the last)."""
    messages = []
    for i, text in enumerate(texts):
        messages.append({"role": "user", "content": text})
        if i < len(texts) - 1:
            messages.append({"role": "assistant", "content": f"answer {i}"})
    return messages


def test_a_poem_alone_goes_to_the_dear_backend(gateway):
    """The control for what follows: without a session, the router sends this conversation to dear."""
    _, routing = ask(gateway, turns(MATH_TURN, POEM_TURN), session="control-x")
    assert routing["backend"] == "dear"
    assert routing["affinity"] == {"source": "session", "backend": None, "decided": False}


def test_a_conversation_stays_on_its_first_backend_for_three_turns(gateway):
    first, routing = ask(gateway, turns(MATH_TURN))
    assert first.model == "cheap" and "affinity" not in routing  # a first turn is routed, then remembered
    second, routing = ask(gateway, turns(MATH_TURN, POEM_TURN))
    assert second.model == "cheap"
    assert routing["affinity"] == {"source": "conversation", "backend": "cheap", "decided": True}
    assert [c["backend"] for c in routing["candidates"]] == ["cheap", "dear"]  # the router still explains
    third, routing = ask(gateway, turns(MATH_TURN, POEM_TURN, POEMS[1]))
    assert third.model == "cheap" and routing["affinity"]["decided"] is True


def test_another_conversation_is_not_steered_by_this_one(gateway):
    ask(gateway, turns(MATH[2]))
    _reply, routing = ask(gateway, turns(MATH[3] + " and then", POEM_TURN))
    assert routing["affinity"] == {"source": "conversation", "backend": None, "decided": False}


def test_an_excluded_backend_moves_the_conversation(gateway):
    ask(gateway, turns(MATH[4]))
    moved, routing = ask(gateway, turns(MATH[4], POEM_TURN), exclude=["cheap"])
    assert moved.model == "dear"
    assert routing["affinity"] == {"source": "conversation", "backend": "cheap", "decided": False}
    after, routing = ask(gateway, turns(MATH[4], POEM_TURN, MATH[5]))  # it now stays where it moved
    assert after.model == "dear" and routing["affinity"] == {
        "source": "conversation",
        "backend": "dear",
        "decided": True,
    }


def test_an_explicit_session_and_a_user_are_sessions_across_unrelated_prompts(gateway):
    ask(gateway, turns(MATH[6]), session="ticket-42")
    reply, routing = ask(gateway, turns(POEMS[2]), session="ticket-42")
    assert reply.model == "cheap" and routing["affinity"]["source"] == "session"

    openai_client = client(gateway)
    openai_client.chat.completions.create(model="router-knn", messages=turns(MATH[7]), user="alice")
    reply = openai_client.chat.completions.create(model="router-knn", messages=turns(POEMS[3]), user="alice")
    assert reply.model == "cheap" and reply.model_extra["routing"]["affinity"]["source"] == "user"
    reply = openai_client.chat.completions.create(model="router-knn", messages=turns(POEMS[3]), user="bob")
    assert reply.model == "dear"


def test_a_streamed_conversation_keeps_its_backend(gateway):
    stream = client(gateway).chat.completions.create(model="router-knn", messages=turns(MATH[8]), stream=True)
    assert {chunk.model for chunk in stream} == {"cheap"}
    stream = client(gateway).chat.completions.create(
        model="router-knn", messages=turns(MATH[8], POEM_TURN), stream=True
    )
    chunks = list(stream)
    assert {chunk.model for chunk in chunks} == {"cheap"}
    assert chunks[-1].model_extra["routing"]["affinity"]["decided"] is True


def test_the_anthropic_front_door_keeps_a_conversation_too(gateway):
    messages = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0).messages
    first = messages.create(
        model="router-knn", max_tokens=50, messages=[{"role": "user", "content": MATH[9]}]
    )
    assert first.model == "cheap"
    second = messages.create(
        model="router-knn",
        max_tokens=50,
        messages=[
            {"role": "user", "content": MATH[9]},
            {"role": "assistant", "content": "a sum"},
            {"role": "user", "content": POEM_TURN},
        ],
    )
    assert second.model == "cheap"
    assert (second.model_extra or {})["routing"]["affinity"]["decided"] is True


def test_affinity_is_counted_in_the_metrics(gateway):
    families = {f.name: f for f in text_string_to_metric_families(httpx.get(gateway.url + "/metrics").text)}
    counted = {s.labels["outcome"]: s.value for s in families["routeyard_affinity_requests"].samples}
    assert counted["decided"] >= 4 and counted["moved"] >= 1 and counted["new"] >= 1


def test_a_failing_backend_moves_the_conversation_to_the_next(upstream, artifact, tmp_path, monkeypatch):
    own = ServerThread(create_upstream_app()).__enter__()
    settings = gateway_settings(upstream.url, artifact)
    settings["backends"].append(
        {"name": "cheap-own", "base_url": own.url + "/v1", "model": "echo", "api_key_env": "UPSTREAM_KEY"}
    )
    settings["routers"][0]["backends"] = {"cheap": "cheap-own"}
    _, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        first, _ = ask(server, turns(MATH[10]))
        assert first.model == "cheap-own"
        own.__exit__(None, None, None)  # its upstream goes down
        second, routing = ask(server, turns(MATH[10], POEM_TURN))
        assert second.model == "dear"
        assert routing["affinity"] == {"source": "conversation", "backend": "cheap-own", "decided": True}
        assert [a["backend"] for a in routing["attempts"]] == ["cheap-own", "dear"]
        third, routing = ask(server, turns(MATH[10], POEM_TURN, MATH[11]))
        assert third.model == "dear" and routing["affinity"]["backend"] == "dear"
    finally:
        server.__exit__(None, None, None)


def test_replicas_sharing_redis_keep_a_conversation_on_one_backend(upstream, artifact, tmp_path, monkeypatch):
    redis_server = RedisServer(tmp_path / "redis").start()
    settings = gateway_settings(upstream.url, artifact, redis_url=redis_server.url)
    _, one = start_gateway(settings, tmp_path, monkeypatch)
    _, two = start_gateway(settings, tmp_path, monkeypatch)
    try:
        first, _ = ask(one, turns(MATH[12]))
        ask(one, turns(MATH[13]))
        deadline = time.monotonic() + 5.0  # sessions reach Redis in batches, within 50 ms
        while len(redis_server.client().keys("routeyard:affinity:*")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        second, routing = ask(two, turns(MATH[12], POEM_TURN))
        assert first.model == second.model == "cheap" and routing["affinity"]["decided"] is True
        redis_server.stop()  # a store that fails routes as if there were no session, never fails
        # (a session replica two has not written yet would still be read from its memory: ask another)
        reply, routing = ask(two, turns(MATH[13], POEM_TURN))
        assert reply.model == "dear" and routing["affinity"]["backend"] is None
    finally:
        one.__exit__(None, None, None)
        two.__exit__(None, None, None)
        redis_server.stop()


def test_the_redis_store_batches_its_writes_reads_its_own_and_flushes_on_close(tmp_path):
    redis_server = RedisServer(tmp_path / "redis").start()
    try:

        async def scenario():
            store = RedisAffinityStore(redis_server.url, ttl_seconds=60, flush_seconds=0.2)
            for i in range(50):
                store.remember(f"s{i}", "cheap")
            seen_before_flush = len(redis_server.client().keys("routeyard:affinity:*"))
            own = await store.backend_of("s7")  # not in Redis yet: read from this process
            store.remember("late", "dear")
            await store.close()  # what is pending is written before the store closes
            return seen_before_flush, own

        seen_before_flush, own = asyncio.run(scenario())
        assert seen_before_flush == 0 and own == "cheap"
        client = redis_server.client()
        assert len(client.keys("routeyard:affinity:*")) == 51
        assert client.get("routeyard:affinity:late") == "dear"
        assert 0 < client.pttl("routeyard:affinity:s0") <= 60_000

        async def after_redis_stopped():
            store = RedisAffinityStore(redis_server.url, ttl_seconds=60, flush_seconds=0.01)
            store.remember("s1", "dear")
            await asyncio.sleep(0.1)  # the write fails: dropped, logged, never raised
            found = await store.backend_of("s1")
            await store.close()
            return found

        redis_server.stop()
        assert asyncio.run(after_redis_stopped()) is None
    finally:
        redis_server.stop()
