"""GatewayRuntime: the one typed state of an app, as create_app leaves it, and when it is ready."""

import pytest
import yaml
from openai import OpenAI
from starlette.applications import Starlette

from routeyard.gateway.app import create_app
from routeyard.gateway.runtime import STILL_LOADING, runtime_of
from routeyard.gateway.settings import GatewaySettings, load_settings
from routeyard.gateway.usage import InMemoryUsageLog
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.server_thread import ServerThread


def test_an_app_without_routers_is_ready_from_the_start():
    runtime = runtime_of(create_app(GatewaySettings()))
    assert runtime.ready and runtime.batcher is None
    assert isinstance(runtime.usage_log, InMemoryUsageLog)
    assert runtime.catalog.backends == {} and runtime.catalog.routers == {}


def test_configured_routers_are_named_in_the_catalog_but_not_ready_until_loaded(tmp_path):
    path = tmp_path / "routeyard.yaml"
    backend = {"name": "cheap", "base_url": "http://127.0.0.1:9/v1", "model": "echo"}
    router = {"name": "always-cheap", "kind": "fixed", "backend": "cheap"}
    path.write_text(
        yaml.safe_dump({"backends": [backend], "routers": [router], "default_router": "always-cheap"})
    )
    log = InMemoryUsageLog()
    runtime = runtime_of(create_app(load_settings(path), usage_log=log))
    assert not runtime.ready and runtime.not_ready_reason == STILL_LOADING
    assert runtime.catalog.router_names == {"always-cheap"}
    assert runtime.catalog.default_router == "always-cheap"
    assert runtime.usage_log is log and runtime.settings.default_router == "always-cheap"


def test_an_app_not_built_by_create_app_has_no_runtime():
    with pytest.raises(TypeError):
        runtime_of(Starlette())


def test_an_app_that_loads_before_serving_answers_its_first_routed_request(tmp_path):
    """A worker behind a shared socket (serve --workers N) accepts nothing before its routers are in,
    so its very first request is routed, never refused as still loading."""
    with ServerThread(create_upstream_app()) as upstream:
        path = tmp_path / "routeyard.yaml"
        backend = {"name": "cheap", "base_url": upstream.url + "/v1", "model": "echo"}
        router = {"name": "always-cheap", "kind": "fixed", "backend": "cheap"}
        path.write_text(yaml.safe_dump({"backends": [backend], "routers": [router]}))
        app = create_app(load_settings(path), load_before_serving=True)
        with ServerThread(app) as gateway:  # entered once uvicorn has started: nothing awaited after
            client = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
            reply = client.chat.completions.create(
                model="always-cheap", messages=[{"role": "user", "content": "hello"}]
            )
    assert reply.model == "cheap" and reply.choices[0].message.content == "echo: hello"
    assert runtime_of(app).ready
