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

from gateway.backends.backend import Backend, Price
from gateway.backends.circuit_breaker import CircuitBreaker
from gateway.backends.http_backend import HttpBackend
from gateway.backends.replay_backend import ReplayBackend
from gateway.embedding_batcher import EmbeddingBatcher
from gateway.routers import FixedRouter, PredictiveRouter, Router
from gateway.settings import BackendConfig, ConfigError, GatewaySettings
from predictor.artifact import load_artifact
from predictor.outcome_table import OutcomeTable
from predictor.routerbench_format import load_routerbench_table


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


def load_routers(settings: GatewaySettings, batcher: EmbeddingBatcher) -> dict[str, Router]:
    """Every configured router by name, artifacts loaded and checked; raises ConfigError listing failures."""
    routers: dict[str, Router] = {}
    problems: list[str] = []
    backends = {b.name for b in settings.backends}
    for config in settings.routers:
        if config.kind == "fixed":
            assert config.backend is not None
            routers[config.name] = FixedRouter(config.name, config.backend)
            continue
        try:
            predictor, _manifest = load_artifact(config.artifact or Path(), batcher.embedder)
        except ValueError as exc:
            problems.append(f"router {config.name}: {exc}")
            continue
        router = PredictiveRouter(
            config.name,
            predictor,
            batcher,
            willingness_to_pay=config.willingness_to_pay,
            backend_of=config.backends,
        )
        if not set(router.backends) & backends:
            problems.append(f"router {config.name}: none of its predictor's models is a configured backend")
        routers[config.name] = router
    if problems:
        raise ConfigError("routers", problems)
    return routers
