"""Backend kinds through their registry: each kind's config, what pydantic cannot see in it, and a
working backend built from it (the openai kind against the mock upstream, the replay kind from a small
RouterBench table on disk)."""

import asyncio

import pandas as pd
import pytest
from pydantic import ValidationError

from routeyard.gateway.backends.connection_pools import ConnectionPools
from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendConfig, BackendContext
from routeyard.gateway.backends.kinds.openai import OpenAiBackend, OpenAiBackendConfig
from routeyard.gateway.backends.kinds.replay import ReplayBackend, ReplayBackendConfig
from routeyard.registry import UnknownKindError
from tests.gateway.conftest import UPSTREAM_KEY


@pytest.fixture
def table(tmp_path):
    """A RouterBench table of one model, ``small``, that answered ``4`` to ``What is 2 plus 2?``."""
    path = tmp_path / "table.csv"
    row = {
        "sample_id": "s1",
        "prompt": "['What is 2 plus 2?']",
        "eval_name": "math",
        "small": 1.0,
        "small|model_response": "['4']",
        "small|total_cost": 0.002,
    }
    pd.DataFrame([row]).to_csv(path, index=False)
    return path


QUESTION = "What is 2 plus 2?"
QUESTION_AS_PARTS = [{"type": "text", "text": QUESTION}]


def build(config, content=QUESTION, context_options=None):
    """The backend of ``config`` built through the registry, and its whole answer to ``content``."""

    async def main():
        async with ConnectionPools() as pools:
            context = BackendContext(pools, **(context_options or {}))
            backend = BACKEND_KINDS.get(config.kind).build(config, context)
            question = [{"role": "user", "content": content}]
            return backend, await backend.complete({"model": config.name, "messages": question})

    return asyncio.run(main())


def test_the_built_in_kinds_are_registered_with_their_configs():
    assert BACKEND_KINDS.names() == ("anthropic", "openai", "replay")
    assert BACKEND_KINDS.get("openai").config is OpenAiBackendConfig
    assert BACKEND_KINDS.get("replay").config is ReplayBackendConfig
    assert all(issubclass(kind.config, BackendConfig) for kind in BACKEND_KINDS)
    with pytest.raises(UnknownKindError, match="known: anthropic, openai, replay"):
        BACKEND_KINDS.get("gemini-someday")


def test_an_openai_config_builds_a_backend_that_answers(upstream, monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    config = OpenAiBackendConfig(
        name="cheap", base_url=upstream.url + "/v1", model="echo", api_key_env="UPSTREAM_KEY"
    )
    assert config.kind == "openai" and config.upstream_model == "echo" and config.problems() == []
    backend, reply = build(config, context_options={"breaker_failures": 2, "breaker_cooldown_seconds": 7.0})
    assert isinstance(backend, OpenAiBackend)
    assert reply.body["choices"][0]["message"]["content"] == "echo: What is 2 plus 2?"
    assert (backend.breaker.failures, backend.breaker.cooldown) == (2, 7.0)


def test_a_replay_config_builds_a_backend_that_replays_the_table(table):
    config = ReplayBackendConfig(name="small", replay_table=table)
    assert config.table_model == "small" and config.problems() == []
    backend, reply = build(config, QUESTION_AS_PARTS)
    assert isinstance(backend, ReplayBackend)
    assert reply.body["choices"][0]["message"]["content"] == "4"
    assert reply.body["routeyard_replay"] == {"sample_id": "s1", "matched_prompt": True}  # parts read as text
    assert reply.cost_usd == pytest.approx(0.002)


def test_openai_problems_are_what_validation_cannot_see(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VARIABLE", raising=False)
    assert OpenAiBackendConfig(name="a").problems() == ["base_url is required for an openai backend"]
    assert OpenAiBackendConfig(
        name="a", base_url="ftp://x", api_key_env="NO_SUCH_KEY_VARIABLE"
    ).problems() == [
        "base_url must start with http:// or https://",
        "environment variable NO_SUCH_KEY_VARIABLE (api_key_env) is unset",
    ]


def test_a_missing_replay_table_is_a_problem(tmp_path):
    config = ReplayBackendConfig(name="small", replay_table=tmp_path / "gone.csv")
    assert config.problems() == [f"replay_table {tmp_path / 'gone.csv'} does not exist"]


def test_configs_keep_todays_constraints_and_refuse_other_kinds_fields(table):
    for bad in ({"name": ""}, {"name": "a", "retries": 11}, {"name": "a", "timeout_seconds": 0}):
        with pytest.raises(ValidationError):
            OpenAiBackendConfig.model_validate(bad)
    for field in ("max_connections", "total_timeout_seconds", "max_response_bytes", "max_sse_line_bytes"):
        with pytest.raises(ValidationError, match=field):
            OpenAiBackendConfig.model_validate({"name": "a", field: 0})
    with pytest.raises(ValidationError, match="replay_table"):
        OpenAiBackendConfig.model_validate({"name": "a", "replay_table": str(table)})
    with pytest.raises(ValidationError, match="base_url"):
        ReplayBackendConfig.model_validate({"name": "a", "replay_table": str(table), "base_url": "http://x"})
    with pytest.raises(ValidationError):
        ReplayBackendConfig.model_validate({"name": "a", "kind": "openai", "replay_table": str(table)})


def test_an_openai_backend_is_bounded_by_default():
    config = OpenAiBackendConfig(name="a")
    assert (config.max_connections, config.total_timeout_seconds) == (100, 300.0)
    assert (config.max_response_bytes, config.max_sse_line_bytes) == (16 * 2**20, 2**20)
