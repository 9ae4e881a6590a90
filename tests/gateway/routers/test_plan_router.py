"""Plan routers through the openai SDK: a plan per prompt — one model, or an agreement pair — walked live.

The plan artifact is a KNN over the hashing embedder trained on a table whose columns are three plans over
the models ``lead``, ``peer`` and ``dear`` (the same predictions for every prompt):
``agree(lead, peer) else dear`` (quality 0.9, $0.002), ``dear`` alone (0.95, $0.01) and ``lead`` alone
(0.6, $0.001). At the routers' willingness to pay of 0.1 $ per unit of quality the pair wins
(0.88 against 0.85 and 0.59). Each router maps the three models to mock backends with fixed answers.
One cascade (over conftest's artifact) judges with the agreement judge.
"""

import dataclasses

import numpy as np
import openai
import pytest

from routeyard.gateway.routers import ROUTER_KINDS
from routeyard.gateway.routers.plan import PlanRouterConfig
from routeyard.gateway.settings import ConfigError, load_settings
from routeyard.policy.plans import AgreementPlan, SinglePlan
from routeyard.predictor.artifact import save_artifact
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.training import train_predictor
from tests.gateway.conftest import MATH, memory_log, routing_table, start_gateway

PAIR = AgreementPlan("lead", "peer", "dear")
PLANS = (PAIR, SinglePlan("dear"), SinglePlan("lead"))
LEAD, PEER, OTHER = "The answer is B.", "Answer: (b)", "The answer is C."
DEAR = "Having weighed every option, the answer is A."
PROSE = "Well, it depends on how you look at it; there are many views."


def plan_artifact(directory):
    """A KNN over :data:`PLANS` (see the module docstring), its manifest listing the plans."""
    n = len(MATH)
    prompts = np.empty(n, dtype=object)
    prompts[:] = [(p,) for p in MATH]
    table = OutcomeTable(
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        datasets=np.array(["math"] * n),
        prompts=prompts,
        models=tuple(plan.name for plan in PLANS),
        quality=np.tile([0.9, 0.95, 0.6], (n, 1)),
        missing=np.zeros((n, 3), dtype=bool),
        cost=np.tile([0.002, 0.01, 0.001], (n, 1)),
    )
    hyperparameters = {"k": 3, "weighting": "uniform", "shrinkage": 0.0}
    trained = train_predictor(
        table, HashingEmbedder(), "knn", train_fraction=1.0, hyperparameters=hyperparameters
    )
    manifest = dataclasses.replace(trained.manifest, plans=tuple(plan.spec() for plan in PLANS))
    save_artifact(trained.predictor, manifest, directory)
    return directory


def plan_router(name, artifact, lead, peer, dear, **extra):
    return {
        "name": name,
        "kind": "plan",
        "artifact": str(artifact),
        "backends": {"lead": lead, "peer": peer, "dear": dear},
        "willingness_to_pay": 0.1,
        **extra,
    }


STRICT = {"fallback": {"kind": "llm", "backend": "grader"}}  # the mock grader gives PROSE 2/10


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    return plan_artifact(tmp_path_factory.mktemp("plans") / "knn")


@pytest.fixture(scope="module")
def gateway_app_and_server(upstream, plans, artifact, tmp_path_factory):
    v1 = upstream.url + "/v1"

    def backend(name, model, price=1.0):
        return {"name": name, "base_url": v1, "model": model, "output_usd_per_million": price, "retries": 0}

    settings = {
        "backends": [
            backend("lead-meets", f"meet:pair:{LEAD}"),
            backend("peer-meets", f"meet:pair:{PEER}"),
            backend("lead", f"says:{LEAD}"),
            backend("peer", f"says:{PEER}"),
            backend("other", f"says:{OTHER}"),
            backend("prose", f"says:{PROSE}"),
            backend("dear", f"says:{DEAR}", 100.0),
            backend("broken", "fail-500"),
            backend("picky", "bad-request"),
            backend("grader", "grader", 2.0),
        ],
        "routers": [
            plan_router("plan-agrees", plans, "lead-meets", "peer-meets", "dear"),
            plan_router("plan-disagrees", plans, "lead", "other", "dear"),
            plan_router("plan-unclear", plans, "prose", "peer", "dear"),
            plan_router("plan-unclear-strict", plans, "prose", "peer", "dear", **STRICT),
            plan_router("plan-first-fails", plans, "broken", "peer", "dear"),
            plan_router("plan-second-fails-strict", plans, "prose", "broken", "dear", **STRICT),
            plan_router("plan-escalation-fails", plans, "lead", "other", "broken"),
            plan_router("plan-rejected", plans, "picky", "picky", "dear"),
            {  # conftest's artifact over models ``cheap`` and ``dear``
                "name": "cascade-agreement",
                "kind": "cascade",
                "artifact": str(artifact),
                "backends": {"cheap": "other", "dear": "dear"},
                "judge": {"kind": "agreement", "second": "lead"},
            },
        ],
        "embedder": "hashing",
    }
    monkeypatch = pytest.MonkeyPatch()
    app, server = start_gateway(settings, tmp_path_factory.mktemp("plan"), monkeypatch)
    yield app, server
    server.__exit__(None, None, None)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def gateway(gateway_app_and_server):
    return gateway_app_and_server[1]


def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def ask(gateway, model, **kwargs):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": MATH[0]}], **kwargs
    )
    reply = raw.parse()
    return reply, reply.model_extra["routing"], raw.headers


def steps(routing):
    return [(s["role"], s["backend"], s["status"]) for s in routing["plan"]["steps"]]


def test_an_agreeing_pair_answers_with_the_designated_answer_and_both_calls_are_paid_and_logged(
    gateway_app_and_server,
):
    app, gateway = gateway_app_and_server
    # the two backends answer only when called at the same time: a pair called one by one would fail
    reply, routing, headers = ask(gateway, "plan-agrees")
    assert reply.choices[0].message.content == LEAD
    assert headers["x-routeyard-plan"] == PAIR.name and headers["x-routeyard-backend"] == "lead-meets"
    plan = routing["plan"]
    assert (plan["name"], plan["verdict"], plan["kept"], plan["failed_plans"]) == (
        PAIR.name,
        "agree",
        "first",
        [],
    )
    assert steps(routing) == [("first", "lead-meets", "ok"), ("second", "peer-meets", "ok")]
    assert plan["steps"][0]["judge_reason"] == "a second answer agrees"
    paid = [s["cost_usd"] for s in plan["steps"]]
    assert all(cost > 0 for cost in paid) and routing["cost_usd"] == pytest.approx(sum(paid))
    assert (routing["predicted_quality"], routing["predicted_cost_usd"]) == (
        pytest.approx(0.9),
        pytest.approx(0.002),
    )
    assert [c["backend"] for c in routing["candidates"]] == [plan.name for plan in PLANS]
    (record,) = [r for r in memory_log(app).records if r.request_id == routing["request_id"]]
    assert [(a.backend, a.status) for a in record.attempts] == [("lead-meets", "ok"), ("peer-meets", "ok")]
    assert record.cost_usd == pytest.approx(sum(paid)) and record.backend == "lead-meets"
    assert record.predicted_quality == pytest.approx(0.9) and record.router == "plan-agrees"


def test_a_disagreeing_pair_escalates_and_pays_all_three(gateway):
    reply, routing, _ = ask(gateway, "plan-disagrees")
    assert reply.choices[0].message.content == DEAR
    assert routing["plan"]["verdict"] == "disagree" and routing["plan"]["kept"] == "escalation"
    assert steps(routing) == [
        ("first", "lead", "ok"),
        ("second", "other", "ok"),
        ("escalation", "dear", "ok"),
    ]
    assert routing["plan"]["steps"][0]["score"] == 0.0
    assert routing["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in routing["attempts"]))
    assert routing["backend"] == "dear"


def test_when_agreement_cannot_tell_the_fallback_judge_keeps_or_escalates(gateway):
    reply, routing, _ = ask(gateway, "plan-unclear")  # the heuristic checks pass the prose
    assert reply.choices[0].message.content == PROSE
    assert routing["plan"]["verdict"] == "cannot_tell" and routing["plan"]["kept"] == "first"
    reply, routing, _ = ask(gateway, "plan-unclear-strict")  # the grader gives it 2/10
    assert reply.choices[0].message.content == DEAR
    assert routing["plan"]["verdict"] == "cannot_tell" and routing["plan"]["kept"] == "escalation"
    gradings = [a for a in routing["attempts"] if a["status"] == "judge"]
    assert [g["backend"] for g in gradings] == ["grader"] and gradings[0]["cost_usd"] > 0
    assert routing["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in routing["attempts"]))


def test_a_streamed_plan_sends_the_answer_once_the_plan_is_settled(gateway):
    chunks = list(
        client(gateway).chat.completions.create(
            model="plan-disagrees", messages=[{"role": "user", "content": MATH[1]}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEAR
    routing = chunks[-1].model_extra["routing"]
    assert routing["plan"]["kept"] == "escalation" and len(routing["plan"]["steps"]) == 3
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None


def test_when_one_of_the_pair_fails_the_other_answer_stands_if_the_fallback_accepts_it(gateway):
    reply, routing, _ = ask(gateway, "plan-first-fails")
    assert reply.choices[0].message.content == PEER
    assert steps(routing) == [("first", "broken", "upstream_error"), ("second", "peer", "ok")]
    assert routing["plan"]["verdict"] is None and routing["plan"]["kept"] == "second"
    reply, routing, _ = ask(gateway, "plan-second-fails-strict")  # the grader rejects the prose
    assert reply.choices[0].message.content == DEAR
    assert [s[2] for s in steps(routing)] == ["ok", "upstream_error", "ok"]


def test_a_failed_escalation_keeps_the_designated_answer(gateway):
    reply, routing, _ = ask(gateway, "plan-escalation-fails")
    assert reply.choices[0].message.content == LEAD
    assert steps(routing)[-1] == ("escalation", "broken", "upstream_error")
    assert routing["plan"]["kept"] == "first" and routing["plan"]["verdict"] == "disagree"


def test_a_plan_without_any_answer_hands_over_to_the_next_plan_that_avoids_the_failed_backend(gateway):
    # paying (almost) anything for quality chooses ``dear`` alone, here a broken backend; the pair needs
    # it too, so ``lead`` alone answers
    reply, routing, headers = ask(
        gateway, "plan-escalation-fails", extra_body={"routing": {"willingness_to_pay": 1e6}}
    )
    assert reply.choices[0].message.content == LEAD
    assert steps(routing) == [("single", "broken", "upstream_error"), ("single", "lead", "ok")]
    assert routing["plan"]["failed_plans"] == ["dear"] and routing["plan"]["name"] == "lead"
    assert headers["x-routeyard-plan"] == "lead" and routing["predicted_quality"] == pytest.approx(0.6)


def test_plans_needing_an_excluded_backend_or_over_the_cost_cap_are_dropped(gateway):
    reply, routing, _ = ask(gateway, "plan-disagrees", extra_body={"routing": {"exclude": ["other"]}})
    assert reply.choices[0].message.content == DEAR and routing["plan"]["name"] == "dear"
    allowed = {c["backend"]: c["allowed"] for c in routing["candidates"]}
    assert allowed == {PAIR.name: False, "dear": True, "lead": True}
    reply, routing, _ = ask(gateway, "plan-disagrees", extra_body={"routing": {"max_cost_usd": 0.0015}})
    assert reply.choices[0].message.content == LEAD and steps(routing) == [("single", "lead", "ok")]
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gateway, "plan-disagrees", extra_body={"routing": {"exclude": ["lead"], "max_cost_usd": 0.005}})
    assert caught.value.code == "no_backend_fits"


def test_a_request_both_of_the_pair_reject_is_the_clients_error_and_is_not_escalated(gateway_app_and_server):
    app, gateway = gateway_app_and_server
    with pytest.raises(openai.BadRequestError) as caught:
        ask(gateway, "plan-rejected")
    assert caught.value.code == "upstream_rejected"
    record = [r for r in memory_log(app).records if r.router == "plan-rejected"][-1]
    assert record.status == 400
    assert [(a.backend, a.status) for a in record.attempts] == [("picky", "upstream_rejected")] * 2


def test_an_agreement_judge_in_a_cascade_escalates_past_an_answer_a_second_model_contradicts(gateway):
    reply, routing, _ = ask(gateway, "cascade-agreement")
    assert reply.choices[0].message.content == DEAR
    answered = [(a["backend"], a["status"], a.get("score")) for a in routing["attempts"]]
    # the second answer is paid as a grading of the cheap answer, charged to the backend that gave it
    assert answered[:2] == [("other", "ok", 0.0), ("lead", "judge", None)]
    assert routing["attempts"][1]["cost_usd"] > 0 and answered[2][:2] == ("dear", "ok")
    assert routing["attempts"][0]["judge_reason"] == "a second answer disagrees"


def test_the_plan_kind_is_found_by_the_settings_and_checks_its_artifact(tmp_path, plans):
    assert "plan" in ROUTER_KINDS.names()
    not_plans = tmp_path / "models"
    trained = train_predictor(routing_table(), HashingEmbedder(), "knn", train_fraction=1.0)
    save_artifact(trained.predictor, trained.manifest, not_plans)
    path = tmp_path / "routeyard.yaml"
    path.write_text(
        "backends:\n  - {name: solo, base_url: 'http://127.0.0.1:9/v1', model: echo}\n"
        "routers:\n"
        f"  - {{name: p1, kind: plan, artifact: '{plans}', fallback: {{kind: llm, backend: ghost}}}}\n"
        f"  - {{name: p2, kind: plan, artifact: '{not_plans}'}}\n"
        f"  - {{name: p3, kind: plan, artifact: '{plans}', backends: {{lead: solo}}}}\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert refused.value.problems == [
        "routers.0 (p1): no plan of its artifact has every model it calls among the configured backends; "
        "name backends after the models or map them with `backends: {model: backend}`",
        "routers.0 (p1): fallback backend 'ghost' is not a configured backend",
        "routers.1 (p2): its artifact lists no plans: it is a predictor over models, not a plan artifact",
    ]  # p3 can serve the plan ``lead`` alone, on backend ``solo``
    assert PlanRouterConfig(name="p", artifact=plans).fallback.kind == "heuristics"
