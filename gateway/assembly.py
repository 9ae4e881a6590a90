"""Building a gateway's backends and routers from its settings.

Backends are cheap to build (replay tables load in well under a second). Routers load predictor
artifacts and need the embedder, which takes seconds, so the app loads them after it starts serving and
reports ready (``/readyz``) once they are in.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import httpx

from routeyard.gateway.backends.backend import Backend, Price
from routeyard.gateway.backends.chat_completer import BackendCompleter
from routeyard.gateway.backends.circuit_breaker import CircuitBreaker
from routeyard.gateway.backends.kinds.openai import HttpBackend
from routeyard.gateway.backends.kinds.replay import ReplayBackend
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.router import FixedRouter, PredictiveRouter, Router
from routeyard.gateway.routers.cascade import CascadeRouter
from routeyard.gateway.settings import BackendConfig, ConfigError, GatewaySettings, JudgeConfig, RouterConfig
from routeyard.judges.judge import Judge
from routeyard.judges.kinds.heuristics import HeuristicJudge, WithHeuristics
from routeyard.judges.kinds.learned import LearnedJudge
from routeyard.judges.kinds.llm import LlmJudge
from routeyard.predictor.artifact import load_artifact
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.routerbench_format import load_routerbench_table


def build_backends(settings: GatewaySettings, client: httpx.AsyncClient) -> dict[str, Backend]:
    """Every configured backend by name; HTTP ones share ``client``."""
    return {config.name: _backend(config, settings, client) for config in settings.backends}


def _backend(config: BackendConfig, settings: GatewaySettings, client: httpx.AsyncClient) -> Backend:
    if config.kind == "replay":
        assert config.replay_table is not None  # checked by the settings
        return ReplayBackend(config.name, _replay_table(config.replay_table), config.upstream_model)
    assert config.base_url is not None
    return HttpBackend(
        config.name,
        client,
        base_url=config.base_url,
        upstream_model=config.upstream_model,
        api_key=os.environ.get(config.api_key_env) if config.api_key_env else None,
        price=Price(config.input_usd_per_million, config.output_usd_per_million),
        timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
        retries=config.retries,
        breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_seconds),
    )


@cache
def _replay_table(path: Path) -> OutcomeTable:
    return load_routerbench_table(path, with_responses=True)


def load_routers(
    settings: GatewaySettings, batcher: EmbeddingBatcher, backends: dict[str, Backend]
) -> dict[str, Router]:
    """Every configured router by name, artifacts loaded and checked; raises ConfigError listing failures.

    ``backends`` are the gateway's (an LLM judge grades through one of them).
    """
    routers: dict[str, Router] = {}
    problems: list[str] = []
    for config in settings.routers:
        try:
            routers[config.name] = _router(config, batcher, backends)
        except ValueError as exc:  # ArtifactError, JudgeArtifactError, or no backend in common
            problems.append(f"router {config.name}: {exc}")
    if problems:
        raise ConfigError("routers", problems)
    return routers


def _router(config: RouterConfig, batcher: EmbeddingBatcher, backends: dict[str, Backend]) -> Router:
    if config.kind == "fixed":
        assert config.backend is not None
        return FixedRouter(config.name, config.backend)
    predictor, _manifest = load_artifact(config.artifact or Path(), batcher.embedder)
    router = PredictiveRouter(
        config.name,
        predictor,
        batcher,
        willingness_to_pay=config.willingness_to_pay,
        backend_of=config.backends,
    )
    if not set(router.backends) & set(backends):
        raise ValueError("none of its predictor's models is a configured backend")
    if config.kind != "cascade":
        return router
    assert config.judge is not None  # checked by the settings
    judge = _judge(config.judge, batcher.embedder, backends)
    return CascadeRouter(
        config.name,
        router,
        judge,
        threshold=config.threshold,
        budget_usd=config.budget_usd,
        order=tuple(config.order),
    )


def _judge(config: JudgeConfig, embedder: Embedder, backends: dict[str, Backend]) -> Judge:
    if config.kind == "heuristics":
        return HeuristicJudge()
    inner: Judge
    if config.kind == "learned":
        inner = LearnedJudge.load(config.artifact or Path(), embedder)
    else:
        assert config.backend is not None
        inner = LlmJudge(BackendCompleter(backends[config.backend]), name=f"llm:{config.backend}")
    return WithHeuristics(inner) if config.heuristics else inner
