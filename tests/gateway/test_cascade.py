"""Cascade routers through the openai SDK: cheap first, escalate while the judge rejects, within budget.

The predictor (conftest's KNN) predicts $0.0001 for model ``cheap`` and $0.01 for ``dear``; each router
maps those two to backends with fixed answers. The LLM judge grades through the mock's ``grader``,
which gives 9/10 to answers containing ``[good]`` and 2/10 to the rest.
"""

import asyncio

import numpy as np
import openai
import pytest

from routeyard.judges.judge_training import train_judge
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.outcome_table import OutcomeTable
from tests.gateway.conftest import MATH, start_gateway

RIGHT, WRONG = "the right answer [good]", "a wrong answer"


def cascade(name, artifact, cheap, dear, judge=None, **extra):
    return {
        "name": name,
        "kind": "cascade",
        "artifact": str(artifact),
        "backends": {"cheap": cheap, "dear": dear},
        "judge": judge or {"kind": "llm", "backend": "grader"},
        **extra,
    }


def learned_judge_artifact(directory, *, by_model=False):
    """A learned judge trained on recorded RIGHT and WRONG answers, each model right half the time; or,
    ``by_model``, on one answer text that model ``cheap`` always gets wrong and ``dear`` always right
    (so only the answering model tells them apart)."""
    n = len(MATH)
    good = np.array([[i % 2 == 0, i % 2 == 1] for i in range(n)])
    if by_model:
        good = np.tile([False, True], (n, 1))
    responses = np.empty((n, 2), dtype=object)
    for i, j in np.ndindex(n, 2):
        responses[i, j] = (RIGHT if good[i, j] or by_model else WRONG,)
    prompts = np.empty(n, dtype=object)
    prompts[:] = [(p,) for p in MATH]
    table = OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["math"] * n),
        prompts=prompts,
        models=("cheap", "dear"),
        quality=good.astype(float),
        missing=np.zeros((n, 2), dtype=bool),
        cost=np.full((n, 2), 0.001),
        responses=responses,
    )
    train_judge(table, HashingEmbedder(), regularisation=1.0).save(directory)
    return directory


@pytest.fixture(scope="module")
def gateway(upstream, artifact, tmp_path_factory):
    v1 = upstream.url + "/v1"
    judge_artifact = learned_judge_artifact(tmp_path_factory.mktemp("judge") / "judge")
    model_judge = learned_judge_artifact(tmp_path_factory.mktemp("judge") / "by-model", by_model=True)

    def backend(name, model, price):
        return {"name": name, "base_url": v1, "model": model, "output_usd_per_million": price, "retries": 0}

    settings = {
        "backends": [
            backend("wrong-cheap", f"says:{WRONG}", 1.0),
            backend("right-cheap", f"says:{RIGHT}", 1.0),
            backend("empty-cheap", "says:", 1.0),
            backend("right-dear", f"says:{RIGHT}", 100.0),
            backend("broken", "fail-500", 1.0),
            backend("grader", "grader", 2.0),
            backend("picky", "bad-request", 1.0),
        ],
        "routers": [
            cascade("cascade-escalates", artifact, "wrong-cheap", "right-dear"),
            cascade("cascade-accepts", artifact, "right-cheap", "right-dear"),
            cascade("cascade-fails-over", artifact, "broken", "right-dear"),
            cascade("cascade-heuristic", artifact, "empty-cheap", "right-dear", judge={"kind": "heuristics"}),
            cascade("cascade-lenient", artifact, "wrong-cheap", "right-dear", threshold=0.1),
            cascade("cascade-thrifty", artifact, "wrong-cheap", "right-dear", budget_usd=0.005),
            cascade(
                "cascade-learned",
                artifact,
                "wrong-cheap",
                "right-dear",
                judge={"kind": "learned", "artifact": str(judge_artifact)},
            ),
            cascade(
                "cascade-judged-by-model",
                artifact,
                "right-cheap",
                "right-dear",
                judge={"kind": "learned", "artifact": str(model_judge), "heuristics": False},
                threshold=0.6,
            ),
            cascade("cascade-rejected-later", artifact, "wrong-cheap", "picky"),
            cascade("cascade-rejected-first", artifact, "picky", "right-dear"),
            cascade("cascade-ordered", artifact, "wrong-cheap", "right-dear", order=["wrong-cheap"]),
        ],
        "embedder": "hashing",
    }
    monkeypatch = pytest.MonkeyPatch()
    _, server = start_gateway(settings, tmp_path_factory.mktemp("cascade"), monkeypatch)
    yield server
    server.__exit__(None, None, None)
    monkeypatch.undo()


def answers(routing):
    """The attempts that answered or failed; without the LLM judge's gradings (status ``judge``)."""
    return [a for a in routing["attempts"] if a["status"] != "judge"]


def ask(gateway, model, **kwargs):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": MATH[0]}], **kwargs
    )
    return raw.parse(), raw.headers


def test_an_accepted_first_answer_stops_the_cascade(gateway):
    reply, headers = ask(gateway, "cascade-accepts")
    routing = reply.model_extra["routing"]
    assert reply.choices[0].message.content == RIGHT
    assert [a["backend"] for a in answers(routing)] == ["right-cheap"]
    assert answers(routing)[0]["score"] == pytest.approx(0.9)
    assert routing["cascade"] == {"threshold": 0.5, "budget_usd": None, "accepted": True, "escalations": 0}
    assert headers["x-routeyard-backend"] == "right-cheap"


def test_a_rejected_answer_escalates_and_the_cost_is_the_sum_of_the_attempts(gateway):
    reply, headers = ask(gateway, "cascade-escalates")
    routing = reply.model_extra["routing"]
    assert reply.choices[0].message.content == RIGHT
    attempts = answers(routing)
    assert [(a["backend"], a["score"]) for a in attempts] == [("wrong-cheap", 0.2), ("right-dear", 0.9)]
    assert attempts[1]["cost_usd"] > attempts[0]["cost_usd"] > 0
    gradings = [a for a in routing["attempts"] if a["status"] == "judge"]
    assert [g["backend"] for g in gradings] == ["grader", "grader"] and gradings[0]["cost_usd"] > 0
    assert routing["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in attempts + gradings))
    assert float(headers["x-routeyard-cost-usd"]) == pytest.approx(routing["cost_usd"])
    assert routing["cascade"]["accepted"] is True and routing["cascade"]["escalations"] == 1


def test_a_learned_judge_escalates_past_the_answer_it_learned_is_wrong(gateway):
    reply, _ = ask(gateway, "cascade-learned")
    attempts = answers(reply.model_extra["routing"])
    assert reply.choices[0].message.content == RIGHT
    assert [a["backend"] for a in attempts] == ["wrong-cheap", "right-dear"]
    assert attempts[0]["score"] < 0.5 <= attempts[1]["score"]


def test_the_threshold_decides_what_is_good_enough(gateway):
    reply, _ = ask(gateway, "cascade-lenient")
    assert reply.choices[0].message.content == WRONG  # 2/10 passes a 0.1 threshold


def test_the_budget_stops_escalation_and_the_last_answer_is_kept(gateway):
    reply, _ = ask(gateway, "cascade-thrifty")
    routing = reply.model_extra["routing"]
    assert reply.choices[0].message.content == WRONG  # the dear model is predicted at $0.01 > budget
    assert [a["backend"] for a in answers(routing)] == ["wrong-cheap"]
    assert routing["cascade"]["accepted"] is False and routing["cascade"]["budget_usd"] == 0.005
    allowed = {c["backend"]: c["allowed"] for c in routing["candidates"]}
    assert allowed == {"wrong-cheap": True, "right-dear": True}  # allowed, but not affordable


def test_a_requests_max_cost_lowers_the_budget(gateway):
    reply, _ = ask(gateway, "cascade-escalates", extra_body={"routing": {"max_cost_usd": 0.005}})
    routing = reply.model_extra["routing"]
    assert reply.choices[0].message.content == WRONG
    assert routing["cascade"]["budget_usd"] == 0.005


def test_an_upstream_failure_inside_a_cascade_moves_to_the_next_backend(gateway):
    reply, _ = ask(gateway, "cascade-fails-over")
    attempts = answers(reply.model_extra["routing"])
    assert reply.choices[0].message.content == RIGHT
    assert [(a["backend"], a["status"]) for a in attempts] == [
        ("broken", "upstream_error"),
        ("right-dear", "ok"),
    ]
    assert attempts[0]["cost_usd"] == 0.0 and "score" not in attempts[0]
    assert reply.model_extra["routing"]["cascade"]["escalations"] == 0  # a failover is no escalation


def test_the_learned_judge_knows_mapped_backends_by_their_models_names(gateway):
    reply, _ = ask(gateway, "cascade-judged-by-model")
    routing = reply.model_extra["routing"]
    # same text from both: only the answering model (cheap → right-cheap, dear → right-dear) decides
    scores = [(a["backend"], a["score"]) for a in answers(routing)]
    assert [b for b, _ in scores] == ["right-cheap", "right-dear"]
    assert scores[0][1] < 0.6 <= scores[1][1]
    assert routing["cascade"]["accepted"] is True


def test_a_later_backend_rejecting_the_request_keeps_the_answer_already_received(gateway):
    reply, _ = ask(gateway, "cascade-rejected-later")
    routing = reply.model_extra["routing"]
    assert reply.choices[0].message.content == WRONG
    assert [(a["backend"], a["status"]) for a in answers(routing)] == [
        ("wrong-cheap", "ok"),
        ("picky", "upstream_rejected"),
    ]
    # the first answer and its grading were paid for; the rejection cost nothing
    assert routing["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in routing["attempts"]))
    assert routing["cost_usd"] > answers(routing)[0]["cost_usd"] > 0 == answers(routing)[1]["cost_usd"]
    assert routing["cascade"]["accepted"] is False


def test_a_first_backend_rejecting_the_request_is_the_clients_error(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="cascade-rejected-first", messages=[{"role": "user", "content": MATH[0]}]
        )
    assert caught.value.code == "upstream_rejected"


def test_a_configured_order_is_walked_and_an_order_left_empty_is_a_400(gateway):
    reply, _ = ask(gateway, "cascade-ordered")
    assert [a["backend"] for a in answers(reply.model_extra["routing"])] == ["wrong-cheap"]
    assert reply.choices[0].message.content == WRONG  # rejected, but the order has nothing dearer
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gateway, "cascade-ordered", extra_body={"routing": {"exclude": ["wrong-cheap"]}})
    assert caught.value.code == "no_backend_fits"


def test_the_heuristic_judge_escalates_past_an_empty_answer(gateway):
    reply, _ = ask(gateway, "cascade-heuristic")
    attempts = answers(reply.model_extra["routing"])
    assert reply.choices[0].message.content == RIGHT
    assert attempts[0]["judge_reason"] == "answer is empty" and attempts[0]["score"] == 0.0


def test_a_streamed_cascade_sends_the_accepted_answer_after_acceptance(gateway):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="cascade-escalates", messages=[{"role": "user", "content": MATH[1]}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == RIGHT
    last = chunks[-1].model_extra or {}
    assert [a["backend"] for a in answers(last["routing"])] == ["wrong-cheap", "right-dear"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None


def test_the_async_client_gets_whole_cascades_concurrently(gateway):
    async def many():
        client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        replies = await asyncio.gather(
            *[
                client.chat.completions.create(
                    model="cascade-escalates", messages=[{"role": "user", "content": MATH[i]}]
                )
                for i in range(8)
            ]
        )
        await client.close()
        return replies

    assert {r.choices[0].message.content for r in asyncio.run(many())} == {RIGHT}
