"""Gateway configuration: one YAML file validated into :class:`GatewaySettings`, overridable by env.

Precedence, highest first: environment variables ``ROUTEYARD_<FIELD>`` (nested fields with ``__``, e.g.
``ROUTEYARD_MAX_BODY_BYTES=2000000``; lists and objects as JSON), then the YAML file, then defaults.
:func:`load_settings` reports *every* problem at once (bad fields, dangling names, missing or unreadable
artifact manifests, key variables) as a :class:`ConfigError`, so a bad config fails at start, never at
the first request.

Backends and routers are configured by kind: each entry's ``kind`` picks a config model from the
backend or router registry (``routeyard.gateway.backends.kinds``, ``routeyard.gateway.routers``), a
pydantic discriminated union built from the registries when this module is imported (a backend without
``kind`` is ``openai``; a router whose ``kind`` names a predictor kind, ``knn`` or ``mlp``, is a predictive
router over an artifact of that kind). Each kind's config lists the problems only it can see
(``problems``), so a new kind brings its own checks.

API keys are never in the file: a backend names the environment variable holding its key
(``api_key_env``), and gateway client keys come from the variable named by ``client_keys_env``
(comma-separated).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from routeyard.gateway.backends.kinds import BACKEND_KINDS, BackendConfig
from routeyard.gateway.routers import ROUTER_KINDS, RouterConfig
from routeyard.predictor.embedder_choice import EMBEDDERS
from routeyard.predictor.kinds import PREDICTOR_KINDS
from routeyard.registry import kind_union
from routeyard.validation import validation_problems

PREDICTIVE_ROUTER = "predictive"  # the router kind that every predictor kind's name selects


class ConfigError(ValueError):
    """The configuration cannot start a gateway; :attr:`problems` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def _router_tag(kind: str) -> str:
    """The router registry's name for a router ``kind``: a predictor kind's name means predictive."""
    return PREDICTIVE_ROUTER if kind in PREDICTOR_KINDS and kind not in ROUTER_KINDS else kind


def _router_kind_names() -> tuple[str, ...]:
    """What a router's ``kind`` may say: every router kind but ``predictive``, and every predictor kind."""
    return (*[n for n in ROUTER_KINDS.names() if n != PREDICTIVE_ROUTER], *PREDICTOR_KINDS.names())


if TYPE_CHECKING:
    AnyBackendConfig = BackendConfig
    AnyRouterConfig = RouterConfig
else:  # built from the registries: the kinds known when this module is imported
    AnyBackendConfig = kind_union(
        {kind.name: kind.config for kind in BACKEND_KINDS}, default="openai", known=BACKEND_KINDS.names()
    )
    AnyRouterConfig = kind_union(
        {kind.name: kind.config for kind in ROUTER_KINDS}, tag_of=_router_tag, known=_router_kind_names()
    )


class GatewaySettings(BaseSettings):
    """Everything a gateway process needs (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="ROUTEYARD_", env_nested_delimiter="__", extra="forbid")

    backends: list[AnyBackendConfig] = Field(default_factory=list)
    routers: list[AnyRouterConfig] = Field(default_factory=list)
    default_router: str | None = None
    client_keys_env: str | None = None
    embedder: str = "minilm-static"
    cache_dir: Path = Path("~/.cache/routeyard")
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    batch_window_ms: float = Field(default=2.0, ge=0.0)
    max_batch: int = Field(default=32, ge=1)
    embedder_threads: int = Field(default=1, ge=1)  # the embedder's compute threads (issue 14)
    embedding_cache_size: int = Field(default=4096, ge=0)  # repeated prompts' vectors kept in memory
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=30.0, gt=0.0)
    redis_url: str | None = None
    store_prompts: bool = False
    usage_buffer_size: int = Field(default=100_000, ge=1)
    usage_stream_max_length: int = Field(default=1_000_000, ge=1)
    # the key plane (issue 15; README "Security")
    virtual_keys: bool = False  # client keys from the key store: Redis at redis_url, else SQLite at keys_db
    keys_db: Path = Path("~/.local/share/routeyard/keys.sqlite")
    admin_key_env: str | None = None  # the variable holding the admin key (/admin/*, /v1/stats, /dashboard)
    request_id_secret_env: str | None = None  # signs request ids to their key (feedback), shared by replicas
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # /metrics on its own port, open there
    metrics_host: str | None = None  # where metrics_port listens (default: serve's --host)
    # deadlines and limits
    header_timeout_seconds: float = Field(default=10.0, gt=0.0)  # a request's headers must arrive by then
    body_timeout_seconds: float = Field(default=30.0, gt=0.0)  # and its body (a 408 after that)
    request_timeout_seconds: float = Field(default=600.0, gt=0.0)  # whole request; streams: first byte, gaps
    limit_concurrency: int | None = Field(default=1024, ge=1)  # requests in flight; beyond: 503
    max_messages: int = Field(default=2048, ge=1)
    embedder_fallback_backend: str | None = None  # an unembeddable prompt goes here if it may (None: 503)
    # hot reload gated by replay (POST /admin/reload, SIGHUP; routeyard.gateway.policy_reload)
    reload_table: Path | None = None  # long outcome table both policies are replayed on (None: no reload)
    reload_tolerance: float = Field(default=0.0, ge=0.0)  # accept if AIQ_new ≥ AIQ_now − this, per router
    # session affinity (routeyard.gateway.session_affinity): a conversation stays on its first backend
    affinity: bool = True
    affinity_ttl_seconds: float = Field(default=3600.0, gt=0.0)  # since the conversation's last turn
    affinity_max_sessions: int = Field(default=100_000, ge=1)  # kept in memory without redis_url
    # the response cache (routeyard.gateway.response_cache): requests opt in with routing.cache
    cache_default: Literal["off", "exact", "semantic"] = "off"  # for requests that do not say routing.cache
    cache_ttl_seconds: float = Field(default=3600.0, gt=0.0)
    cache_max_entries: int = Field(default=10_000, ge=1)  # oldest evicted beyond (per gateway, or fleet)
    cache_max_entry_bytes: int = Field(default=262_144, ge=1)  # a larger answer is not cached
    cache_max_memory_bytes: int = Field(default=268_435_456, ge=1)  # all answers, without redis_url
    # cosine; none below 1 kept a cached answer within 1 point on the sample (benchmarks/RESULTS.md)
    cache_semantic_threshold: float = Field(default=1.0, gt=0.0, le=1.0)
    # tracing (routeyard.gateway.tracing): OpenTelemetry spans over OTLP/HTTP; none when unset
    otlp_endpoint: str | None = None  # e.g. http://collector:4318 (/v1/traces is added; protobuf)
    otlp_service_name: str = "routeyard"  # the spans' resource service.name

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, name: str) -> str:
        if name not in EMBEDDERS:
            raise ValueError(f"embedder must be one of: {', '.join(EMBEDDERS)}")
        return name

    @field_validator("cache_default", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted ``off`` as false: false means off, and true means exact."""
        if isinstance(value, bool):
            return "exact" if value else "off"
        return value

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

    def admin_key(self) -> str | None:
        """The admin key (from the variable ``admin_key_env`` names), or None."""
        return _secret(self.admin_key_env)

    def request_id_secret(self) -> str | None:
        """The secret that signs request ids to their client's key, or None (a random one per process)."""
        return _secret(self.request_id_secret_env)

    @property
    def authenticates_clients(self) -> bool:
        """Whether the API needs a client key (a listed one, or a virtual key)."""
        return self.virtual_keys or bool(self.client_keys_env)

    def client_keys(self) -> frozenset[str]:
        """The Bearer tokens clients must present; empty means no authentication."""
        if not self.client_keys_env:
            return frozenset()
        return frozenset(k.strip() for k in os.environ.get(self.client_keys_env, "").split(",") if k.strip())


def _secret(variable: str | None) -> str | None:
    value = os.environ.get(variable, "").strip() if variable else ""
    return value or None


def load_settings(
    path: str | Path | None = None, *, secrets: bool = True, **overrides: Any
) -> GatewaySettings:
    """Settings from the YAML file at ``path`` (none: defaults), env and ``overrides``; raises ConfigError.

    ``secrets=False`` skips the checks that the key variables are set (:func:`secret_problems`): for
    commands that read the routing of a config without serving it (``routeyard replay --config``)."""
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
        problems = [f"{where or '<root>'}: {message}" for where, message in validation_problems(exc)]
        raise ConfigError(source, problems) from exc
    problems = reference_problems(settings) + (secret_problems(settings) if secrets else [])
    if problems:
        raise ConfigError(source, problems)
    return settings


def reference_problems(settings: GatewaySettings) -> list[str]:
    """Every name or file the settings refer to that does not exist."""
    problems: list[str] = []
    backends = {b.name for b in settings.backends}
    routers = {r.name for r in settings.routers}
    problems += [f"backends: name {n!r} is used twice" for n in _repeated(b.name for b in settings.backends)]
    problems += [f"routers: name {n!r} is used twice" for n in _repeated(r.name for r in settings.routers)]
    problems += [f"routers: {n!r} is also a backend name" for n in sorted(backends & routers)]
    for i, backend in enumerate(settings.backends):
        problems += [f"backends.{i} ({backend.name}): {p}" for p in backend.problems()]
    for i, router in enumerate(settings.routers):
        problems += [f"routers.{i} ({router.name}): {p}" for p in router.problems(backends)]
    if settings.embedder_fallback_backend not in backends | {None}:
        problems.append(f"embedder_fallback_backend: {settings.embedder_fallback_backend!r} is no backend")
    if settings.default_router is not None and settings.default_router not in routers | backends:
        problems.append(f"default_router: {settings.default_router!r} is no router or backend")
    if settings.redis_url is not None and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        problems.append("redis_url: must start with redis://, rediss:// or unix://")
    if settings.otlp_endpoint is not None and not settings.otlp_endpoint.startswith(("http://", "https://")):
        problems.append("otlp_endpoint: must start with http:// or https:// (OTLP over HTTP)")
    return problems


def secret_problems(settings: GatewaySettings) -> list[str]:
    """Every key variable the settings name that is unset or empty."""
    problems = []
    if settings.client_keys_env and not settings.client_keys():
        problems.append(f"client_keys_env: environment variable {settings.client_keys_env} is unset or empty")
    for field in ("admin_key_env", "request_id_secret_env"):
        variable = getattr(settings, field)
        if variable and not os.environ.get(variable, "").strip():
            problems.append(f"{field}: environment variable {variable} is unset or empty")
    return problems


def _repeated(names: Any) -> list[str]:
    seen: set[str] = set()
    repeated = []
    for name in names:
        if name in seen:
            repeated.append(name)
        seen.add(name)
    return repeated
