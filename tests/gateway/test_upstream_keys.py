"""The upstream's key: the configured ``api_key_env`` key reaches an upstream that checks it, and no key
appears in an error body or a log line, even when the upstream refuses it."""

import logging

import httpx
import openai
import pytest

from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import UPSTREAM_KEY, start_gateway

WRONG_KEY = "sk-wrong-upstream-key-7777"


@pytest.fixture(scope="module")
def keyed_upstream():
    with ServerThread(create_upstream_app(api_key=UPSTREAM_KEY)) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(keyed_upstream, tmp_path_factory):
    v1 = keyed_upstream.url + "/v1"
    settings = {
        "backends": [
            {"name": "keyed", "base_url": v1, "model": "echo", "api_key_env": "UPSTREAM_KEY"},
            {"name": "wrong-key", "base_url": v1, "model": "wrong", "api_key_env": "WRONG_UPSTREAM_KEY"},
            {"name": "keyless", "base_url": v1, "model": "keyless"},
        ],
        "routers": [{"name": "router-fixed", "kind": "fixed", "backend": "keyed"}],
        "breaker_failures": 100,
    }
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WRONG_UPSTREAM_KEY", WRONG_KEY)
    _, server = start_gateway(settings, tmp_path_factory.mktemp("keys"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="the-clients-own-key", max_retries=0)


def test_the_configured_key_reaches_the_upstream(gateway, keyed_upstream):
    reply = client(gateway).chat.completions.create(
        model="keyed", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "echo: hi"  # the mock answers 401 without the key
    chunks = list(
        client(gateway).chat.completions.create(
            model="router-fixed", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: hi"


def test_the_upstream_checks_the_key_so_this_test_can_fail(keyed_upstream):
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    url = keyed_upstream.url + "/v1/chat/completions"
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"authorization": f"Bearer {WRONG_KEY}"}).status_code == 401
    assert httpx.post(url, json=body, headers={"authorization": f"Bearer {UPSTREAM_KEY}"}).status_code == 200


@pytest.mark.parametrize(("backend", "model"), [("wrong-key", "wrong"), ("keyless", "keyless")])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_refused_key_is_a_502_naming_the_backend_and_no_key(
    gateway, keyed_upstream, backend, model, streamed, caplog
):
    before = httpx.get(keyed_upstream.url + "/calls").json().get(model, 0)
    with caplog.at_level(logging.DEBUG), pytest.raises(openai.InternalServerError) as caught:
        client(gateway).chat.completions.create(
            model=backend, messages=[{"role": "user", "content": "hi"}], stream=streamed
        )
    assert httpx.get(keyed_upstream.url + "/calls").json()[model] == before + 1  # it did reach the upstream
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["code"] == "upstream_credentials_rejected"
    assert (
        f"backend {backend} rejected the gateway's credentials"
        in caught.value.response.json()["error"]["message"]
    )
    text = caught.value.response.text
    for secret in (UPSTREAM_KEY, WRONG_KEY, "the-clients-own-key", "Incorrect API key"):
        assert secret not in text and secret not in caplog.text
