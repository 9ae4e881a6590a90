"""Router kinds through their registry: configs find what pydantic cannot see, builds check artifacts.

The predictor artifacts are conftest's (models ``cheap`` and ``dear``, hashing embedder); backends are
replay backends answering one fixed text each, and ``grader`` grades 9/10.
"""

import asyncio
import math

import numpy as np
import pytest
from pydantic import ValidationError

from routeyard.gateway.backends.kinds.replay import ReplayBackend
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.routers import ROUTER_KINDS, RouterContext, build_router
from routeyard.gateway.routers.cascade import CascadeRouter, CascadeRouterConfig
from routeyard.gateway.routers.fixed import FixedRouter, FixedRouterConfig
from routeyard.gateway.routers.predictive import PredictiveRouter, PredictiveRouterConfig
from routeyard.gateway.walk import WalkingRouter
from routeyard.gateway.wire import RoutingOptions
from routeyard.judges.heuristic_checks import WithHeuristics
from routeyard.judges.kinds.llm import LlmJudge, LlmJudgeConfig
from routeyard.predictor.hashing_embedder import HashingEmbedder
from routeyard.predictor.kinds.knn import KnnPredictor
from routeyard.predictor.kinds.mlp import MlpPredictor
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.registry import UnknownKindError
from tests.gateway.conftest import MATH

ANSWERS = {"cheap": "4", "dear": "four", "grader": "Looks right.\nGRADE: 9"}


def replay_backends(answers):
    """A replay backend per name, answering ``answers[name]`` to any prompt."""
    names = tuple(answers)
    responses = np.empty((1, len(names)), dtype=object)
    for j, name in enumerate(names):
        responses[0, j] = (answers[name],)
    prompts = np.empty(1, dtype=object)
    prompts[0] = ("What is 2 plus 2?",)
    table = OutcomeTable(
        sample_ids=np.array(["s0"]),
        datasets=np.array(["sums"]),
        prompts=prompts,
        models=names,
        quality=np.ones((1, len(names))),
        missing=np.zeros((1, len(names)), dtype=bool),
        cost=np.full((1, len(names)), 0.001),
        responses=responses,
    )
    return {name: ReplayBackend(name, table, name) for name in names}


@pytest.fixture
def context():
    return RouterContext(EmbeddingBatcher(HashingEmbedder()), replay_backends(ANSWERS))


def test_the_built_in_router_kinds_are_registered():
    assert ROUTER_KINDS.names() == ("cascade", "fixed", "plan", "predictive")
    assert ROUTER_KINDS.get("predictive").config is PredictiveRouterConfig


def test_a_fixed_router_names_a_configured_backend(context):
    assert FixedRouterConfig(name="f", backend="cheap").problems(set(context.backends)) == []
    assert FixedRouterConfig(name="f", backend="ghost").problems({"cheap"}) == [
        "backend 'ghost' is not a configured backend"
    ]
    router = build_router(FixedRouterConfig(name="f", backend="cheap"), context)
    assert isinstance(router, FixedRouter) and router.backend == "cheap"
    with pytest.raises(ValueError, match="'ghost' is not a configured backend"):
        build_router(FixedRouterConfig(name="f", backend="ghost"), context)


def test_a_predictive_routers_kind_is_any_predictor_kind_and_nothing_else(artifact):
    assert PredictiveRouterConfig(name="p", kind="knn", artifact=artifact).willingness_to_pay == math.inf
    with pytest.raises(
        ValidationError, match="kind must be a predictor kind: one of cluster, ensemble, knn, logistic, mlp"
    ):
        PredictiveRouterConfig(name="p", kind="fixed", artifact=artifact)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        PredictiveRouterConfig(name="p", kind="knn", artifact=artifact, willingness_to_pay=-1.0)


def test_a_predictive_router_builds_the_predictor_of_its_kind(context, artifact, mlp_artifact):
    knn = build_router(PredictiveRouterConfig(name="k", kind="knn", artifact=artifact), context)
    mlp = build_router(PredictiveRouterConfig(name="m", kind="mlp", artifact=mlp_artifact), context)
    assert isinstance(knn, PredictiveRouter) and isinstance(knn.predictor, KnnPredictor)
    assert isinstance(mlp, PredictiveRouter) and isinstance(mlp.predictor, MlpPredictor)
    decision = asyncio.run(knn.decide((MATH[0],), RoutingOptions(), set(context.backends)))
    assert set(decision.ranked) == {"cheap", "dear"}


def test_a_predictive_kind_that_is_not_its_artifacts_is_reported_and_refused(context, artifact):
    config = PredictiveRouterConfig(name="m", kind="mlp", artifact=artifact)
    mismatch = "kind 'mlp', but its artifact holds a 'knn' predictor; say kind: knn"
    assert config.problems({"cheap", "dear"}) == [mismatch]
    with pytest.raises(ValueError) as refused:
        build_router(config, context)
    assert str(refused.value) == mismatch


def test_a_predictive_routers_artifact_and_mapping_are_checked(tmp_path, artifact):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = PredictiveRouterConfig(name="p", kind="knn", artifact=tmp_path / "missing")
    assert missing.problems({"cheap"}) == [f"artifact {tmp_path / 'missing'} is not a directory"]
    unread = PredictiveRouterConfig(name="p", kind="knn", artifact=empty)
    assert unread.problems({"cheap"}) == [f"{empty}: not a predictor artifact (no manifest.json)"]
    mapped = PredictiveRouterConfig(name="p", kind="knn", artifact=artifact, backends={"cheap": "ghost"})
    assert mapped.problems({"a"}) == [
        "none of its artifact's models (cheap, dear) is a configured backend; name backends after them "
        "or map them with `backends: {model: backend}`",
        "backends maps to unknown backends ['ghost']",
    ]
    assert PredictiveRouterConfig(name="p", kind="knn", artifact=artifact).problems({"cheap"}) == []
    excluding = PredictiveRouterConfig(name="p", kind="knn", artifact=artifact, exclude=["dear", "ghost"])
    assert excluding.problems({"cheap", "dear"}) == ["exclude names unknown backends ['ghost']"]


def test_a_predictive_router_without_a_backend_among_its_models_is_refused(artifact):
    context = RouterContext(EmbeddingBatcher(HashingEmbedder()), replay_backends({"other": "x"}))
    with pytest.raises(ValueError, match="none of its predictor's models is a configured backend"):
        build_router(PredictiveRouterConfig(name="p", kind="knn", artifact=artifact), context)


def test_a_cascade_reads_its_judge_config_by_kind(artifact):
    config = CascadeRouterConfig.model_validate(
        {"name": "c", "kind": "cascade", "artifact": str(artifact), "judge": {"kind": "llm", "backend": "g"}}
    )
    assert config.judge == LlmJudgeConfig(backend="g")
    with pytest.raises(ValidationError, match="kind must be one of: agreement, heuristics, learned, llm"):
        CascadeRouterConfig.model_validate(
            {"name": "c", "kind": "cascade", "artifact": str(artifact), "judge": {"kind": "oracle"}}
        )


def test_a_cascades_judge_order_and_mapping_are_checked(artifact):
    no_judge = CascadeRouterConfig(name="c", artifact=artifact)
    assert no_judge.problems({"cheap", "dear"}) == [
        "a cascade needs a judge (kind agreement, heuristics, learned or llm)"
    ]
    config = CascadeRouterConfig(
        name="c",
        artifact=artifact,
        judge=LlmJudgeConfig(backend="grader"),
        order=["cheap", "ghost"],
        backends={"dear": "phantom"},
    )
    assert config.problems({"cheap", "dear"}) == [
        "judge backend 'grader' is not a configured backend",
        "order names unknown backends ['ghost']",
        "backends maps to unknown backends ['phantom']",
    ]


def test_a_built_cascade_walks_its_backends_and_grades_through_the_judges_backend(context, artifact):
    config = CascadeRouterConfig(name="c", artifact=artifact, judge=LlmJudgeConfig(backend="grader"))
    router = build_router(config, context)
    assert isinstance(router, CascadeRouter) and isinstance(router.judge, WithHeuristics)
    assert isinstance(router.judge.inner, LlmJudge) and router.judge.name == "heuristics+llm:grader"
    predictive = build_router(PredictiveRouterConfig(name="p", kind="knn", artifact=artifact), context)
    assert isinstance(router, WalkingRouter) and not isinstance(predictive, WalkingRouter)

    async def walk():
        decision = await router.decide((MATH[0],), RoutingOptions(), {"cheap", "dear"})
        body = {"messages": [{"role": "user", "content": MATH[0]}]}
        return await router.walk(
            decision, MATH[0], lambda b: context.backends[b].complete(body), RoutingOptions()
        )

    cascade = asyncio.run(walk())
    assert cascade.accepted and [s.backend for s in cascade.steps] == ["cheap"]
    assert cascade.steps[0].judgement.score == pytest.approx(0.9)
    assert cascade.steps[0].judgement.grader == "grader"


def test_a_cascade_that_cannot_get_its_judge_is_refused(context, artifact):
    with pytest.raises(ValueError, match="a cascade needs a judge"):
        build_router(CascadeRouterConfig(name="c", artifact=artifact), context)
    ghost = CascadeRouterConfig(name="c", artifact=artifact, judge=LlmJudgeConfig(backend="ghost"))
    with pytest.raises(ValueError, match="judge backend 'ghost' is not a configured backend"):
        build_router(ghost, context)


def test_a_config_no_kind_registered_is_refused(context, artifact):
    class Unregistered(FixedRouterConfig):
        pass

    with pytest.raises(UnknownKindError, match="no router kind is configured by Unregistered"):
        build_router(Unregistered(name="u", backend="cheap"), context)
