"""Virtual keys end to end: created over /admin/keys, used through the official openai SDK, held to their
budgets, downgrade, rate limits, caps, model lists, revocation and expiry — on a real redis-server (and
the main path on the SQLite store too).

Costs here come from the routing table (conftest): a poem predicted $0.01 on ``dear`` (the only one
right on poems) and $0.0001 on ``cheap``; the upstream's actual usage is priced by the backends' rates.
"""

import asyncio
import time

import httpx
import openai
import pytest

from routeyard.gateway.runtime import runtime_of
from routeyard.testing.redis_server import RedisServer
from tests.gateway.conftest import MATH, POEMS, gateway_settings, memory_log, start_gateway

ADMIN_KEY = "sk-admin-virtual-keys"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-keys")).start()
    yield server
    server.stop()


def start_keyed_gateway(upstream, artifact, tmp_path, monkeypatch, store, redis_server=None, **overrides):
    """A gateway with virtual keys in ``store`` ("redis" or "sqlite") and the admin key set."""
    monkeypatch.setenv("ROUTEYARD_TEST_ADMIN", ADMIN_KEY)
    where = {"redis_url": redis_server.url} if store == "redis" else {"keys_db": str(tmp_path / "keys.db")}
    settings = gateway_settings(
        upstream.url, artifact, virtual_keys=True, admin_key_env="ROUTEYARD_TEST_ADMIN", **where, **overrides
    )
    return start_gateway(settings, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def keyed(upstream, artifact, redis_server, tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_keyed_gateway(
        upstream, artifact, tmp_path_factory.mktemp("keyed"), monkeypatch, "redis", redis_server
    )
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def create_key(url, **limits):
    """A new key's plain text, created over the admin API."""
    response = httpx.post(
        url + "/admin/keys",
        json={"name": "test", **limits},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["key"]


def client_for(url, key):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def ask(client, model, text, **extra):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], **extra)


def settled(url, key, timeout=10.0):
    """Wait until ``key``'s spend no longer holds a dear answer's 0.01 $ reservation (every answer here
    costs far less): its settlement runs in the background, after the reply."""
    deadline = time.monotonic() + timeout
    while key_usage(url, key)["spent_day_usd"] >= 0.005:
        assert time.monotonic() < deadline, "the key's reservation was never settled"
        time.sleep(0.02)


def key_usage(url, key):
    key_id = key.split("-")[1]
    response = httpx.get(url + f"/admin/keys/{key_id}", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    return response.json()["usage"]


@pytest.mark.parametrize("store", ["redis", "sqlite"])
def test_a_key_serves_until_its_budget_is_spent_then_429_budget_exceeded(
    store, upstream, artifact, redis_server, tmp_path, monkeypatch
):
    app, server = start_keyed_gateway(upstream, artifact, tmp_path, monkeypatch, store, redis_server)
    try:
        key = create_key(server.url, budget_day_usd=0.01)
        client = client_for(server.url, key)
        answered = 0
        with pytest.raises(openai.RateLimitError) as refused:
            for i in range(20):  # dear reserves ≈ $0.0077 (256 assumed tokens) and spends ≈ $0.0006
                ask(client, "dear", f"budget {i}")
                answered += 1
        spent = key_usage(server.url, key)["spent_day_usd"]
    finally:
        server.__exit__(None, None, None)
    assert 1 <= answered < 20
    error = refused.value
    assert error.status_code == 429 and error.code == "budget_exceeded"
    assert 1 <= int(error.response.headers["retry-after"]) <= 86_400
    assert 0 < spent <= 0.01
    key_id = key.split("-")[1]
    if store == "sqlite":
        statuses = [r.status for r in memory_log(app).records if r.client == key_id]
    else:
        entries = redis_server.client().xrange("routeyard:requests")
        statuses = [int(f["status"]) for _, f in entries if f.get("client") == key_id]
    assert statuses == [200] * answered  # every answered request logged under the key (refusals: counted)


def test_near_its_budget_a_key_is_downgraded_before_it_is_refused(keyed):
    _, server = keyed
    key = create_key(server.url, budget_day_usd=0.012, downgrade_at=0.9, downgrade_willingness_to_pay=0.0)
    client = client_for(server.url, key)
    first = ask(client, "router-knn", POEMS[0])
    assert first.model == "dear"  # 0.01 of 0.012 reserved: below 90 %
    routes = []
    for poem in POEMS[1:6]:
        settled(server.url, key)  # the last request's settlement (in the background): spend is the actual $
        reply = ask(client, "router-knn", poem)
        routes.append((reply.model, reply.model_extra["routing"]["willingness_to_pay"]))
    assert ("cheap", 0.0) in routes  # downgraded once the reservation would pass 90 % of the budget
    assert all(model == "cheap" for model, _ in routes[routes.index(("cheap", 0.0)) :])


def test_rpm_limit_is_a_429_rate_limited_with_retry_after(keyed):
    _, server = keyed
    client = client_for(server.url, create_key(server.url, rpm=3))
    for i in range(3):
        ask(client, "cheap", f"rpm {i}")
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client, "cheap", "rpm 3")
    assert refused.value.code == "rate_limited"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60


def test_tpm_limit_counts_the_tokens_actually_used(keyed):
    _, server = keyed
    client = client_for(server.url, create_key(server.url, tpm=100))
    with pytest.raises(openai.RateLimitError) as too_long:
        ask(client, "cheap", "count these words " * 40)  # ≈ 184 estimated tokens: over 100 at once
    answered = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for i in range(12):  # the mock upstream reports 15 tokens per call: 7 fit in 100
            ask(client, "cheap", f"tpm {i}")
            answered += 1
    assert too_long.value.code == refused.value.code == "rate_limited"
    assert 5 <= answered <= 7
    ask(client_for(server.url, create_key(server.url, tpm=100)), "cheap", "short")  # another key: its own


def test_revoked_and_expired_keys_are_refused(keyed):
    _, server = keyed
    revoked = create_key(server.url)
    expiring = create_key(server.url, expires_at=time.time() + 1.5)
    for key in (revoked, expiring):
        ask(client_for(server.url, key), "cheap", "while live")
    deleted = httpx.delete(
        server.url + f"/admin/keys/{revoked.split('-')[1]}", headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert deleted.status_code == 200
    time.sleep(1.6)
    for key in (revoked, expiring):
        with pytest.raises(openai.AuthenticationError):
            ask(client_for(server.url, key), "cheap", "after")
    forged = revoked[:-4] + "abcd"
    with pytest.raises(openai.AuthenticationError):
        ask(client_for(server.url, forged), "cheap", "forged")


def test_16_concurrent_clients_overshoot_a_budget_by_at_most_one_request(keyed):
    _, server = keyed
    budget = 0.005  # a reservation is ≈ $0.002: a few at a time fit
    key = create_key(server.url, budget_day_usd=budget)
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)

    async def one(i):
        try:
            await client.chat.completions.create(
                model="dear", messages=[{"role": "user", "content": f"concurrent {i}"}], max_tokens=64
            )
            return 200
        except openai.RateLimitError:
            return 429

    async def all_of_them():
        statuses = []
        for wave in range(4):  # 4 waves of 16 at once: the budget runs out in the middle
            statuses += await asyncio.gather(*(one(16 * wave + i) for i in range(16)))
        return statuses

    statuses = asyncio.run(all_of_them())
    time.sleep(0.3)  # the last settlements
    spent = key_usage(server.url, key)["spent_day_usd"]
    one_request = (60 * 10.0 + 64 * 30.0) / 1e6  # a generous bound on one answered request's $
    assert 200 in statuses and 429 in statuses
    assert spent <= budget + one_request


def test_caps_and_model_lists_of_a_key(keyed):
    _, server = keyed
    key = create_key(server.url, max_tokens=50, max_n=1, routers=["router-knn"], backends=["cheap"])
    client = client_for(server.url, key)
    with pytest.raises(openai.BadRequestError) as over_cap:
        ask(client, "cheap", "x", max_tokens=51)
    assert over_cap.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        ask(client, "cheap", "x", n=2)
    with pytest.raises(openai.PermissionDeniedError) as not_allowed:
        ask(client, "dear", "x")
    assert not_allowed.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):
        ask(client, "router-fixed", "x")
    routed = ask(client, "router-knn", POEMS[3])
    assert routed.model == "cheap"  # dear is outside the key's backends, so the router never picks it
    echoed = ask(client, "cheap", MATH[0])
    assert echoed.model_extra["mock_received"]["max_tokens"] == 50  # the cap, sent when none was asked
    models = {m.id for m in client.models.list()}
    assert models == {"cheap", "router-knn", "auto"}


def test_listed_client_keys_keep_working_beside_virtual_keys(
    upstream, artifact, redis_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("ROUTEYARD_TEST_LISTED", "sk-listed-1")
    app, server = start_keyed_gateway(
        upstream,
        artifact,
        tmp_path,
        monkeypatch,
        "redis",
        redis_server,
        client_keys_env="ROUTEYARD_TEST_LISTED",
    )
    try:
        listed = ask(client_for(server.url, "sk-listed-1"), "cheap", "listed")
        virtual = ask(client_for(server.url, create_key(server.url)), "cheap", "virtual")
        with pytest.raises(openai.AuthenticationError):
            ask(client_for(server.url, "sk-unknown"), "cheap", "nobody")
    finally:
        server.__exit__(None, None, None)
    assert listed.model == virtual.model == "cheap"
    assert runtime_of(app).key_store is not None


def test_with_redis_down_keys_fail_closed_and_serve_again_once_it_is_back(
    upstream, artifact, tmp_path, monkeypatch
):
    own_redis = RedisServer(tmp_path / "redis").start()
    _, server = start_keyed_gateway(upstream, artifact, tmp_path, monkeypatch, "redis", own_redis)
    try:
        client = client_for(server.url, create_key(server.url, budget_day_usd=1.0))
        ask(client, "cheap", "before")
        own_redis.kill()
        with pytest.raises(openai.InternalServerError) as refused:
            ask(client, "cheap", "while Redis is down")
        own_redis.start()
        after = ask(client, "cheap", "after")
    finally:
        server.__exit__(None, None, None)
        own_redis.stop()
    assert refused.value.status_code == 503 and refused.value.code == "key_store_unavailable"
    assert after.model == "cheap"
