import re
import shutil

import numpy as np
import pytest
from scipy.stats import ks_2samp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from benchmarks.load_prompts import (
    PLACEHOLDER,
    SHORT_PROMPTS,
    chat_bodies,
    prompt_pool,
    prompt_tokens,
    repeated_body,
    request_tag,
    with_tag,
)
from benchmarks.wrk_load import run_load
from routeyard.demo.config import SAMPLE_TABLE
from routeyard.gateway.token_count import count_prompt_tokens
from routeyard.predictor.routerbench_format import load_routerbench_table
from routeyard.testing.server_thread import ServerThread

TAG = re.compile(r"^(?:Request |\[)(\d+)\.(\d+)\.(\d+)(?::|\]) ")


@pytest.fixture(scope="module")
def sample_prompts():
    return [tuple(turns) for turns in load_routerbench_table(SAMPLE_TABLE, with_responses=False).prompts]


@pytest.fixture(scope="module")
def routerbench_pool():
    return prompt_pool("routerbench")


def test_short_prompts_are_distinct_about_30_tokens_and_lead_with_the_placeholder():
    pool = prompt_pool("short")
    assert len(set(pool)) == len(pool) == SHORT_PROMPTS
    assert all(turns[0].startswith(f"Request {PLACEHOLDER}: ") for turns in pool)
    tokens = [prompt_tokens(turns) for turns in pool]
    assert min(tokens) >= 24 and max(tokens) <= 36
    assert 28 <= np.median(tokens) <= 34


def test_routerbench_pool_is_the_samples_real_prompts_each_once(routerbench_pool, sample_prompts):
    untagged = [(turns[0].removeprefix(f"[{PLACEHOLDER}] "), *turns[1:]) for turns in routerbench_pool]
    assert sorted(untagged) == sorted(sample_prompts)
    assert all(turns[0].startswith(f"[{PLACEHOLDER}] ") for turns in routerbench_pool)


def test_what_a_short_run_sends_follows_the_samples_length_distribution(routerbench_pool, sample_prompts):
    sample = np.array([count_prompt_tokens(turns) for turns in sample_prompts])
    first = routerbench_pool[:300]  # a short run's requests
    untagged = np.array(
        [count_prompt_tokens((t[0].removeprefix(f"[{PLACEHOLDER}] "), *t[1:])) for t in first]
    )
    assert ks_2samp(untagged, sample).pvalue > 0.01
    assert abs(np.median(untagged) - np.median(sample)) <= 0.05 * np.median(sample)
    assert np.mean(untagged < 100) == pytest.approx(np.mean(sample < 100), abs=0.05)  # the mbpp share
    added = np.array([prompt_tokens(turns) for turns in first]) - untagged
    assert added.max() <= 12  # the tag: a handful of tokens on top of the sample's text


def test_with_tag_fills_the_placeholder_in_a_copy():
    body = chat_bodies("m", prompt_pool("short")[:1])[0]
    first, second = with_tag(body, request_tag(1, 0, 1)), with_tag(body, request_tag(1, 0, 2))
    assert first != second
    assert first["messages"][0]["content"].startswith("Request 1.0.1: Explain ")  # type: ignore[index]
    assert PLACEHOLDER in body["messages"][0]["content"]  # type: ignore[index]
    with pytest.raises(ValueError, match="no placeholder"):
        with_tag(first, "x")


@pytest.fixture
def recording_upstream():
    prompts: list[str] = []

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        prompts.append(body["messages"][0]["content"])
        return JSONResponse({"id": "r", "object": "chat.completion", "choices": []})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    with ServerThread(app) as server:
        yield server.url + "/v1/chat/completions", prompts


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install -y wrk)")
def test_wrk_sends_every_request_a_prompt_never_sent_before(recording_upstream, routerbench_pool):
    url, received = recording_upstream
    pool = prompt_pool("short")[:3] + routerbench_pool[:2]
    bodies = chat_bodies("m", pool)
    results = [run_load(url, bodies, connections=4, seconds=1) for _ in range(2)]  # tags must not repeat
    assert all(result.errors == 0 for result in results)
    assert sum(r.started for r in results) >= len(received) >= sum(r.requests for r in results)
    assert len(received) > 2 * len(pool)  # the pool was cycled through
    assert len(set(received)) == len(received)
    runs = set()
    for prompt in received:
        tag = TAG.match(prompt)
        assert tag is not None, prompt[:80]
        runs.add(tag.group(1))
        assert tag.group(2) == "1"  # wrk's one thread
        untagged = prompt.replace(".".join(tag.groups()), PLACEHOLDER, 1)
        assert untagged in {turns[0] for turns in pool}  # the rest of the text arrived intact
    assert len(runs) == 2


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install -y wrk)")
def test_a_cache_hit_load_repeats_one_prompt(recording_upstream):
    url, received = recording_upstream
    run_load(url, [repeated_body("m")], connections=2, seconds=1)
    assert len(received) > 1
    assert set(received) == {repeated_body("m")["messages"][0]["content"]}  # type: ignore[index]
