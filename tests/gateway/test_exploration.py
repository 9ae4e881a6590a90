"""Exploration through a real gateway: after the client has its answer, another candidate is asked and
both answers are graded and logged, exported for ``train`` and tallied for the live AIQ, within a daily
budget. Upstreams are the mock (the other candidate behind a real delay), the grader is the LLM judge
over the mock's ``grader`` model, Redis a real ``redis-server``."""

import asyncio
import json
import time

import openai
import pytest
import yaml

from routeyard.cli.main import main
from routeyard.evaluation.live_aiq import summary_as_dict
from routeyard.gateway.runtime import runtime_of
from routeyard.gateway.settings import ConfigError, load_settings
from routeyard.gateway.usage import ExplorationRecord
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.mock_upstream import create_upstream_app
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import ServerThread
from tests.gateway.conftest import MATH, gateway_settings, memory_log, redis_log, start_gateway

SLOW_SECONDS = 2.0  # the other candidate's delay: far longer than the client's own request takes
GRADER = {"kind": "llm", "backend": "grader", "heuristics": False}


def delayed(app, seconds):
    """``app`` answering every chat completion ``seconds`` late (a slow upstream, over real HTTP)."""

    async def slow_app(scope, receive, send):
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            await asyncio.sleep(seconds)
        await app(scope, receive, send)

    return slow_app


@pytest.fixture(scope="module")
def slow_upstream():
    with ServerThread(delayed(create_upstream_app(), SLOW_SECONDS)) as server:
        yield server


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def exploring_settings(upstream, slow_upstream, artifact, exploration, **overrides):
    """A gateway whose router ``explorer`` routes everything to ``cheap`` (w ≈ 0) among the candidates
    ``cheap`` and ``slow`` (the artifact's ``dear``), exploring as ``exploration`` says; the other
    routers are kept to check they never explore."""
    settings = gateway_settings(upstream.url, artifact, **overrides)

    def backend(name, url, model, price):
        prices = {"input_usd_per_million": price, "output_usd_per_million": price}
        return {
            "name": name,
            "base_url": url + "/v1",
            "model": model,
            "api_key_env": "UPSTREAM_KEY",
            **prices,
        }

    settings["backends"] += [
        backend("slow", slow_upstream.url, "echo", 20.0),
        backend("grader", upstream.url, "grader", 2.0),
    ]
    settings["routers"] = [
        {
            "name": "explorer",
            "kind": "knn",
            "artifact": str(artifact),
            "willingness_to_pay": 1e-6,
            "backends": {"dear": "slow"},
            "exploration": exploration,
        }
    ]
    settings["default_router"] = "explorer"
    return settings


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def flat(numbers, prefix=""):
    """A nested mapping of numbers as ``{"a.b.c": number}`` (lists by index; None kept)."""
    items = numbers.items() if isinstance(numbers, dict) else enumerate(numbers)
    out = {}
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict | list):
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def skipped(app, reason):
    return runtime_of(app).metrics.exploration_skipped.labels("explorer", reason)._value.get()


def test_the_client_gets_its_answer_first_and_both_answers_are_graded_and_logged_later(
    upstream, slow_upstream, artifact, tmp_path, monkeypatch
):
    exploration = {"fraction": 1.0, "budget_usd_per_day": 10.0, "grader": GRADER}
    settings = exploring_settings(upstream, slow_upstream, artifact, exploration)
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        log = memory_log(app)
        prompts = [MATH[0] + " [good]", MATH[1]]
        for prompt in prompts:
            started = time.perf_counter()
            reply = client.chat.completions.create(
                model="explorer", messages=[{"role": "user", "content": prompt}]
            )
            elapsed = time.perf_counter() - started
            assert reply.model == "cheap" and reply.choices[0].message.content == "echo: " + prompt
            assert elapsed < SLOW_SECONDS / 2, f"the client waited {elapsed:.2f} s for the exploration"
        assert len(log.explorations) == 0  # the other candidate has not answered yet
        assert wait_for(lambda: len(log.explorations) == 4), f"{len(log.explorations)} explored answers"
    finally:
        server.__exit__(None, None, None)

    requests = [r.request_id for r in log.records]
    by_request: dict[str, list[ExplorationRecord]] = {}
    for record in log.explorations:
        by_request.setdefault(record.request_id, []).append(record)
    assert sorted(by_request) == sorted(requests)
    for request_id, prompt in zip(requests, prompts, strict=True):
        chosen, other = sorted(by_request[request_id], key=lambda r: not r.chosen)
        assert (chosen.backend, chosen.chosen, chosen.propensity) == ("cheap", True, 1.0)
        assert (other.backend, other.chosen, other.propensity) == ("slow", False, 1.0)  # 1 / (k − 1), k = 2
        assert chosen.candidates == other.candidates == ("cheap", "slow")
        grade = 0.9 if "[good]" in prompt else 0.2  # the mock grader's verdict, read by the LLM judge
        assert chosen.quality == pytest.approx(grade) and other.quality == pytest.approx(grade)
        assert chosen.grading_cost_usd > 0 and other.grading_cost_usd > 0
        assert 0 < chosen.cost_usd < other.cost_usd  # each answer's own $: slow is priced 20× dearer
        assert chosen.prompt_turns is None and chosen.response is None  # store_prompts is off
    summary = runtime_of(app).live_aiq.summaries()["explorer"]
    assert summary.policy is not None and summary.policy.quality.n == 2


def test_a_streamed_answer_is_explored_once_its_stream_ended_with_the_text_the_client_got(
    upstream, slow_upstream, artifact, tmp_path, monkeypatch
):
    exploration = {"fraction": 1.0, "budget_usd_per_day": 10.0, "grader": GRADER}
    settings = exploring_settings(upstream, slow_upstream, artifact, exploration, store_prompts=True)
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        prompt = MATH[2] + " [good]"
        started = time.perf_counter()
        stream = client.chat.completions.create(
            model="explorer", messages=[{"role": "user", "content": prompt}], stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert time.perf_counter() - started < SLOW_SECONDS / 2  # the exploration did not hold the stream
        log = memory_log(app)
        assert wait_for(lambda: len(log.explorations) == 2), f"{len(log.explorations)} explored answers"
    finally:
        server.__exit__(None, None, None)
    chosen, other = sorted(log.explorations, key=lambda r: not r.chosen)
    assert (chosen.backend, other.backend) == ("cheap", "slow")
    assert chosen.response == streamed == "echo: " + prompt  # graded on what the client was sent
    assert other.response == "echo: " + prompt  # the other candidate was asked whole
    assert chosen.quality == pytest.approx(0.9) and other.quality == pytest.approx(0.9)


def test_exported_explorations_train_and_replay_to_the_gateways_live_aiq(
    upstream, slow_upstream, artifact, redis_server, tmp_path, monkeypatch, capsys
):
    exploration = {"fraction": 1.0, "budget_usd_per_day": 10.0, "grader": GRADER}
    settings = exploring_settings(
        upstream, slow_upstream, artifact, exploration, redis_url=redis_server.url, store_prompts=True
    )
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    prompts = [MATH[i] + (" [good]" if i % 3 else "") for i in range(8)]
    try:

        async def burst():
            client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
            return await asyncio.gather(
                *[
                    client.chat.completions.create(
                        model="explorer", messages=[{"role": "user", "content": p}]
                    )
                    for p in prompts
                ]
            )

        assert all(r.model == "cheap" for r in asyncio.run(burst()))
        runtime = runtime_of(app)

        def tallied():
            summary = runtime.live_aiq.summaries().get("explorer")
            return summary is not None and summary.policy is not None and summary.policy.quality.n == 8

        assert wait_for(tallied)  # the Redis store's exchange (every 0.5 s) read the fleet's tally back
        gateway_live = summary_as_dict(runtime.live_aiq.summaries()["explorer"])
        assert wait_for(lambda: redis_log(app).buffered == 0)
    finally:
        server.__exit__(None, None, None)

    table = tmp_path / "explored.csv"
    assert main(["export", "--redis", redis_server.url, "--explored", "--out", str(table)]) == 0
    assert "wrote 8 explored requests" in capsys.readouterr().out
    loaded = load_long_table(table)
    assert loaded.n_prompts == 8 and set(loaded.models) == {"cheap", "slow"} and not loaded.missing.any()

    artifact_out = tmp_path / "retrained"
    train = ["train", "--data", str(table), "--format", "long", "--embedder", "hashing"]
    pinned = ["--k", "3", "--no-search", "--train-fraction", "1.0"]
    assert main([*train, *pinned, "--out", str(artifact_out)]) == 0
    assert "trained knn on 8 of 8 prompts" in capsys.readouterr().out

    replay = ["replay", "--data", str(table), "--format", "long", "--live", "--out", str(tmp_path / "r")]
    assert main(replay) == 0
    replayed = json.loads((tmp_path / "r" / "live.json").read_text())["routers"]["explorer"]
    gateway_numbers = flat(json.loads(json.dumps(gateway_live)))
    assert flat(replayed).keys() == gateway_numbers.keys()
    # the same numbers; Redis adds the sums in its own floating point (INCRBYFLOAT), which moves an
    # interval of a constant cost (zero variance, from differences of sums) by ≈ 1e-9 of the mean
    assert flat(replayed) == pytest.approx(gateway_numbers, rel=1e-6, abs=1e-12)
    assert replayed["policy"]["quality"]["n"] == 8 and replayed["aiq"] == gateway_live["aiq"]


def test_the_daily_budget_stops_exploring_and_the_skips_are_counted(
    upstream, slow_upstream, artifact, tmp_path, monkeypatch
):
    # one exploration (the slow answer and two gradings) costs more than this: after it, none
    exploration = {"fraction": 1.0, "budget_usd_per_day": 1e-6, "grader": GRADER}
    settings = exploring_settings(upstream, slow_upstream, artifact, exploration)
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        log = memory_log(app)
        client.chat.completions.create(model="explorer", messages=[{"role": "user", "content": MATH[0]}])
        assert wait_for(lambda: len(log.explorations) == 2)
        for prompt in MATH[1:6]:
            client.chat.completions.create(model="explorer", messages=[{"role": "user", "content": prompt}])
        assert wait_for(lambda: skipped(app, "budget") == 5)
        time.sleep(SLOW_SECONDS + 0.5)  # had any of them explored, its answers would be in by now
        assert len(log.explorations) == 2
    finally:
        server.__exit__(None, None, None)


def test_no_exploration_at_fraction_zero_nor_for_a_backend_named_directly(
    upstream, slow_upstream, artifact, tmp_path, monkeypatch
):
    settings = exploring_settings(upstream, slow_upstream, artifact, {"fraction": 0.0})
    settings["routers"].append(
        {
            "name": "always",
            "kind": "knn",
            "artifact": str(artifact),
            "backends": {"dear": "slow"},
            "exploration": {"fraction": 1.0, "grader": GRADER},
        }
    )
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        for model, prompts in (("explorer", MATH[:3]), ("cheap", MATH[:3]), ("slow", MATH[:1])):
            for prompt in prompts:
                client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
        time.sleep(SLOW_SECONDS + 0.5)  # an exploration started by any of them would have ended
        assert len(memory_log(app).explorations) == 0
        client.chat.completions.create(model="always", messages=[{"role": "user", "content": MATH[0]}])
        assert wait_for(lambda: len(memory_log(app).explorations) == 2)  # the same gateway does explore
    finally:
        server.__exit__(None, None, None)


def test_exploring_without_a_grader_is_a_config_problem(upstream, slow_upstream, artifact, tmp_path):
    settings = exploring_settings(upstream, slow_upstream, artifact, {"fraction": 0.5})
    settings["routers"][0]["exploration"]["budget_usd_per_day"] = 1.0
    settings["routers"].append(
        {
            "name": "ungradable",
            "kind": "knn",
            "artifact": str(artifact),
            "exploration": {"fraction": 0.1, "grader": {"kind": "llm", "backend": "nowhere"}},
        }
    )
    path = tmp_path / "routeyard.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert "exploration: a grader is needed when fraction > 0" in message
    assert "exploration grader" in message and "nowhere" in message


def test_a_budget_store_that_fails_skips_exploring_and_never_the_request(
    upstream, slow_upstream, artifact, redis_server, tmp_path, monkeypatch
):
    exploration = {"fraction": 1.0, "budget_usd_per_day": 10.0, "grader": GRADER}
    settings = exploring_settings(upstream, slow_upstream, artifact, exploration, redis_url=redis_server.url)
    app, server = start_gateway(settings, tmp_path, monkeypatch)
    try:
        redis_server.stop()  # the shared daily spend cannot be read: exploring stops, serving does not
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
        for prompt in MATH[:3]:
            reply = client.chat.completions.create(
                model="explorer", messages=[{"role": "user", "content": prompt}]
            )
            assert reply.model == "cheap"
        assert wait_for(lambda: skipped(app, "budget_store_failed") == 3)
        assert skipped(app, "error") == 0
    finally:
        server.__exit__(None, None, None)
