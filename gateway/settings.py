"""Gateway configuration: one YAML file validated into :class:`GatewaySettings`, overridable by env.

Precedence, highest first: environment variables ``ROUTEYARD_<FIELD>`` (nested fields with ``__``, e.g.
``ROUTEYARD_MAX_BODY_BYTES=2000000``; lists and objects as JSON), then the YAML file, then defaults.
:func:`load_settings` reports *every* problem at once (bad fields, dangling names, missing or unreadable
artifact manifests, key variables) as a :class:`ConfigError`, so a bad config fails at start, never at
the first request.

API keys are never in the file: a backend names the environment variable holding its key
(``api_key_env``), and gateway client keys come from the variable named by ``client_keys_env``
(comma-separated).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from routeyard.predictor.artifact import ArtifactError, read_manifest

ROUTER_KINDS = ("knn", "mlp", "fixed", "cascade")


class ConfigError(ValueError):
    """The configuration cannot start a gateway; :attr:`problems` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class BackendConfig(BaseModel):
    """An upstream LLM.

    ``kind="openai"`` is any OpenAI-compatible server at ``base_url``; ``kind="replay"`` answers with the
    recorded responses of ``model`` in the outcome table ``replay_table`` (the embedded demo's backends).
    Prices are $ per million input / output tokens.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["openai", "replay"] = "openai"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    input_usd_per_million: float = Field(default=0.0, ge=0.0)
    output_usd_per_million: float = Field(default=0.0, ge=0.0)
    timeout_seconds: float = Field(default=60.0, gt=0.0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0.0)
    retries: int = Field(default=2, ge=0, le=10)
    replay_table: Path | None = None

    @property
    def upstream_model(self) -> str:
        """The model id sent upstream (``model``, or the backend's name)."""
        return self.model or self.name


class JudgeConfig(BaseModel):
    """The judge of a cascade router.

    ``learned``: a learned-judge ``artifact`` from ``routeyard train-judge``. ``llm``: the configured
    ``backend`` grades each answer. ``heuristics``: only the cheap checks (empty, refusal, truncated).
    With ``heuristics: true`` (the default) the checks run before a learned or LLM judge.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["learned", "llm", "heuristics"]
    artifact: Path | None = None
    backend: str | None = None
    heuristics: bool = True


class RouterConfig(BaseModel):
    """A named router clients select with ``model``.

    ``knn``/``mlp``: a predictor ``artifact`` from ``routeyard train`` whose model names are backend names
    (or mapped by ``backends``), routed by ``willingness_to_pay`` ($ per unit quality; ``inf`` = best).
    ``fixed``: always ``backend``. ``cascade``: the predictor ``artifact`` orders the backends by
    predicted cost (or ``order`` lists them), escalating while ``judge`` scores an answer below
    ``threshold`` and the next call's predicted cost fits ``budget_usd`` per request.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: Literal["knn", "mlp", "fixed", "cascade"]
    artifact: Path | None = None
    willingness_to_pay: float = Field(default=math.inf, ge=0.0)
    backend: str | None = None
    backends: dict[str, str] = Field(default_factory=dict)
    judge: JudgeConfig | None = None
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    budget_usd: float = Field(default=math.inf, gt=0.0)
    order: list[str] = Field(default_factory=list)


class GatewaySettings(BaseSettings):
    """Everything a gateway process needs (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="ROUTEYARD_", env_nested_delimiter="__", extra="forbid")

    backends: list[BackendConfig] = Field(default_factory=list)
    routers: list[RouterConfig] = Field(default_factory=list)
    default_router: str | None = None
    client_keys_env: str | None = None
    embedder: Literal["minilm", "minilm-onnx", "hashing"] = "minilm-onnx"
    cache_dir: Path = Path("~/.cache/routeyard")
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    batch_window_ms: float = Field(default=2.0, ge=0.0)
    max_batch: int = Field(default=32, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0.0)
    redis_url: str | None = None
    store_prompts: bool = False
    usage_buffer_size: int = Field(default=100_000, ge=1)
    usage_stream_max_length: int = Field(default=1_000_000, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return env_settings, init_settings  # env overrides what the YAML file (passed as init) says

    def client_keys(self) -> frozenset[str]:
        """The Bearer tokens clients must present; empty means no authentication."""
        if not self.client_keys_env:
            return frozenset()
        return frozenset(k.strip() for k in os.environ.get(self.client_keys_env, "").split(",") if k.strip())


def load_settings(path: str | Path | None = None, **overrides: Any) -> GatewaySettings:
    """Settings from the YAML file at ``path`` (none: defaults), env and ``overrides``; raises ConfigError."""
    source = str(path) if path is not None else "<defaults>"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, [f"cannot read the file ({type(exc).__name__}: {exc})"]) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(source, ["the file must hold a mapping of settings"])
        raw = loaded or {}
    try:
        settings = GatewaySettings(**{**raw, **overrides})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(source, problems) from exc
    problems = reference_problems(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def reference_problems(settings: GatewaySettings) -> list[str]:
    """Every name, file or variable the settings refer to that does not exist."""
    problems: list[str] = []
    backends = {b.name for b in settings.backends}
    routers = {r.name for r in settings.routers}
    problems += [f"backends: name {n!r} is used twice" for n in _repeated(b.name for b in settings.backends)]
    problems += [f"routers: name {n!r} is used twice" for n in _repeated(r.name for r in settings.routers)]
    problems += [f"routers: {n!r} is also a backend name" for n in sorted(backends & routers)]
    for i, backend in enumerate(settings.backends):
        problems += _backend_problems(f"backends.{i} ({backend.name})", backend)
    for i, router in enumerate(settings.routers):
        problems += _router_problems(f"routers.{i} ({router.name})", router, backends)
    if settings.default_router is not None and settings.default_router not in routers | backends:
        problems.append(f"default_router: {settings.default_router!r} is no router or backend")
    if settings.redis_url is not None and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        problems.append("redis_url: must start with redis://, rediss:// or unix://")
    if settings.client_keys_env and not settings.client_keys():
        problems.append(f"client_keys_env: environment variable {settings.client_keys_env} is unset or empty")
    return problems


def _backend_problems(where: str, backend: BackendConfig) -> list[str]:
    problems = []
    if backend.kind == "openai" and not backend.base_url:
        problems.append(f"{where}: base_url is required for an openai backend")
    if (
        backend.kind == "openai"
        and backend.base_url
        and not backend.base_url.startswith(("http://", "https://"))
    ):
        problems.append(f"{where}: base_url must start with http:// or https://")
    if backend.kind == "replay" and (backend.replay_table is None or not backend.replay_table.exists()):
        problems.append(f"{where}: replay_table {backend.replay_table} does not exist")
    if backend.api_key_env and backend.api_key_env not in os.environ:
        problems.append(f"{where}: environment variable {backend.api_key_env} (api_key_env) is unset")
    return problems


def _router_problems(where: str, router: RouterConfig, backends: set[str]) -> list[str]:
    problems = []
    if router.kind in ("knn", "mlp", "cascade"):
        problems += _artifact_problems(where, router, backends)
    if router.kind == "fixed" and router.backend not in backends:
        problems.append(f"{where}: backend {router.backend!r} is not a configured backend")
    if router.kind == "cascade":
        problems += _judge_problems(where, router.judge, backends)
    unknown = sorted(set(router.backends.values()) - backends)
    unknown_order = sorted(set(router.order) - backends)
    if unknown_order:
        problems.append(f"{where}: order names unknown backends {unknown_order}")
    if unknown:
        problems.append(f"{where}: backends maps to unknown backends {unknown}")
    return problems


def _artifact_problems(where: str, router: RouterConfig, backends: set[str]) -> list[str]:
    """What is wrong with a router's artifact that its manifest tells (its files load after start-up)."""
    if router.artifact is None or not router.artifact.is_dir():
        return [f"{where}: artifact {router.artifact} is not a directory"]
    try:
        manifest = read_manifest(router.artifact)
    except ArtifactError as exc:
        return [f"{where}: {exc}"]
    if not {router.backends.get(model, model) for model in manifest.models} & backends:
        return [
            f"{where}: none of its artifact's models ({', '.join(manifest.models)}) is a configured "
            "backend; name backends after them or map them with `backends: {model: backend}`"
        ]
    return []


def _judge_problems(where: str, judge: JudgeConfig | None, backends: set[str]) -> list[str]:
    if judge is None:
        return [f"{where}: a cascade needs a judge (kind learned, llm or heuristics)"]
    if judge.kind == "learned" and (judge.artifact is None or not judge.artifact.is_dir()):
        return [f"{where}: judge artifact {judge.artifact} is not a directory"]
    if judge.kind == "llm" and judge.backend not in backends:
        return [f"{where}: judge backend {judge.backend!r} is not a configured backend"]
    return []


def _repeated(names: Any) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated
