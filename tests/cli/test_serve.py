"""`routeyard serve` with no config, as a new user runs it: the embedded demo answers through the SDK."""

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from pydantic import BaseModel

from routeyard.demo.config import SAMPLE_TABLE
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.mock_upstream import ServerThread, create_upstream_app, free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    port = free_port()
    cache = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "ROUTEYARD_CACHE_DIR": str(cache)}
    routeyard = Path(sys.executable).parent / "routeyard"
    log = (cache / "serve.log").open("w")
    process = subprocess.Popen(
        [str(routeyard), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # the first start embeds 2,213 prompts to build the KNN artifact
        _wait_until_ready(url, process, timeout=600, log=cache / "serve.log")
        yield url, cache
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_demo_prints_its_url_and_an_sdk_example(demo):
    url, cache = demo
    output = (cache / "serve.log").read_text()
    assert f"{url}/v1" in output and "from openai import OpenAI" in output


def test_a_recorded_prompt_is_routed_and_answered_with_the_recorded_response(demo):
    url, _ = demo
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=True)
    row = 0
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="router-knn", messages=[{"role": "user", "content": turn} for turn in table.prompts[row]]
    )
    routing = extra(reply)["routing"]
    assert table.responses is not None
    column = table.models.index(routing["backend"])
    assert routing["router"] == "router-knn" and len(routing["candidates"]) == 11
    assert reply.choices[0].message.content == "\n\n".join(table.responses[row, column])
    assert routing["cost_usd"] == pytest.approx(table.cost[row, column])
    assert extra(reply)["routeyard_replay"] == {
        "sample_id": table.sample_ids[row],
        "matched_prompt": True,
    }


def test_the_demo_lists_the_routerbench_models_and_streams(demo):
    url, _ = demo
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat", "router-knn", "auto"} <= ids
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "Reverse a string in Python."}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert extra(chunks[-1])["routing"]["router"] == "router-knn"


def extra(reply: BaseModel) -> dict[str, Any]:
    """The fields routeyard adds to OpenAI's objects."""
    return reply.model_extra or {}


def test_serve_with_two_workers_answers_from_both_processes(tmp_path):
    with ServerThread(create_upstream_app()) as upstream:
        config = tmp_path / "routeyard.yaml"
        backend = {"name": "echo", "base_url": upstream.url + "/v1", "model": "echo"}
        config.write_text(yaml.safe_dump({"backends": [backend]}))
        port = free_port()
        routeyard = Path(sys.executable).parent / "routeyard"
        process = subprocess.Popen(
            [str(routeyard), "serve", "--config", str(config), "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_ready(url, process)
            client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
            for i in range(20):
                reply = client.chat.completions.create(
                    model="echo", messages=[{"role": "user", "content": f"{i}"}]
                )
                assert reply.choices[0].message.content == f"echo: {i}"
            assert len(_worker_processes(process.pid)) == 2
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_ready(
    url: str, process: subprocess.Popen[bytes], *, timeout: float = 120, log: Path | None = None
) -> None:
    """Return once ``url`` is ready; fail the test (with the end of ``log``) if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the gateway did not become ready:\n{log.read_text()[-3000:] if log else ''}")


def _worker_processes(pid: int) -> list[str]:
    """The Python processes uvicorn started under ``pid`` (its workers; not multiprocessing's tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    commands = [
        Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode() for child in children
    ]
    return [c for c in commands if "multiprocessing.spawn" in c or "spawn_main" in c]


def test_the_demo_cascade_walks_from_the_cheapest_backend(demo):
    url, _ = demo
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="router-cascade",
        messages=[{"role": "user", "content": "Which is heavier, a kilo of iron or of wool?"}],
    )
    routing = extra(reply)["routing"]
    first = routing["attempts"][0]
    cheapest = min((c for c in routing["candidates"] if c["allowed"]), key=lambda c: c["predicted_cost_usd"])
    assert first["backend"] == cheapest["backend"] and "score" in first
    assert routing["cascade"]["budget_usd"] == 0.01
    assert routing["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in routing["attempts"]))


def test_the_demo_plan_router_settles_a_recorded_prompt_as_the_replay_would(demo):
    url, _ = demo
    table = load_routerbench_table(SAMPLE_TABLE, with_responses=True)
    assert table.responses is not None
    row = 0  # an arc-challenge prompt: its answers are choice letters, so agreement can be told
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="router-plans", messages=[{"role": "user", "content": turn} for turn in table.prompts[row]]
    )
    routing = extra(reply)["routing"]
    plan = routing["plan"]
    assert routing["router"] == "router-plans" and plan["name"]
    recorded = {s["backend"]: table.cost[row, table.models.index(s["backend"])] for s in plan["steps"]}
    assert routing["cost_usd"] == pytest.approx(sum(recorded.values()))  # every call of the plan is paid
    kept = routing["backend"]
    assert reply.choices[0].message.content == "\n\n".join(table.responses[row, table.models.index(kept)])
    if plan["verdict"] == "agree":
        assert [s["role"] for s in plan["steps"]] == ["first", "second"] and kept == plan["steps"][0][
            "backend"
        ]
