"""Everything one gateway app holds while it runs, in one typed object: :class:`GatewayRuntime`.

``create_app`` builds it (nothing starts then), puts it on ``app.state.runtime`` and fills it as the app
starts: backends in the catalog when it starts serving, then the embedding batcher and the routers in the
background, and readiness once they are in (or the reason they are not). Tests and tools read it with
:func:`runtime_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from routeyard.arrays import Vectors
from routeyard.gateway.capabilities import CapabilityTable
from routeyard.gateway.embedding_batcher import EmbeddingBatcher
from routeyard.gateway.exploration import Explorer
from routeyard.gateway.exploration_budget import InMemorySpendLedger, RedisSpendLedger, SpendLedger
from routeyard.gateway.keys.authentication import Authenticator
from routeyard.gateway.keys.key_enforcement import KeyEnforcer
from routeyard.gateway.keys.request_ids import RequestIds
from routeyard.gateway.keys.virtual_key import KeyStore
from routeyard.gateway.live_aiq_store import InMemoryLiveAiq, LiveAiqStore
from routeyard.gateway.metrics import GatewayMetrics
from routeyard.gateway.model_catalog import ModelCatalog
from routeyard.gateway.recent_requests import RecentRequests
from routeyard.gateway.request_timeline import RedisRequestTimeline, RequestTimeline
from routeyard.gateway.response_cache.policy import ResponseCache
from routeyard.gateway.response_cache.store_choice import response_cache_store
from routeyard.gateway.session_affinity import SessionAffinity, affinity_store
from routeyard.gateway.settings import GatewaySettings
from routeyard.gateway.usage import FanOutUsageLog, UsageLog
from routeyard.gateway.wire import ChatCompletionRequest
from routeyard.predictor.embedder import embedding_text

if TYPE_CHECKING:  # policy_reload works on a runtime: imported for the annotation only
    from routeyard.gateway.policy_reload import PolicyReloader

STILL_LOADING = "the router's predictor is still loading"


@dataclass
class GatewayRuntime:
    """One app's state (see the module docstring).

    Attributes:
        settings: what the app was built from.
        usage_log: where each served request's record and each feedback go (Redis or memory).
        metrics: the Prometheus metrics (``GET /metrics``).
        recent: the last requests, summed up for ``GET /v1/stats``.
        catalog: what ``model`` can name; its backends and routers are added as the app starts.
        ready: every configured router is loaded (True from the start when there are none).
        not_ready_reason: why not, while not ready (loading, or what made loading fail).
        batcher: the prompt embeddings' micro-batcher, once the routers start loading (None before,
            and always without routers).
        timeline: the last hour minute by minute (the fleet's with ``redis_url``), for the charts.
        recorder: metrics, recent requests, the timeline and the usage log: where a served request is
            recorded.
        refusals: metrics, recent requests and the timeline only: a request refused before routing is
            counted, not logged.
        authenticator: who is calling (client keys, virtual keys, the admin key).
        keys: the virtual keys' reservations (None unless ``virtual_keys``).
        request_ids: issues request ids signed to their client's key (for feedback).
        reloader: reloads the routers from the config file, gated by replay (``POST /admin/reload``,
            SIGHUP); set by ``create_app``. ``settings`` then holds the routers being served, and
            ``catalog`` swaps them in one assignment.
        capabilities: what each backend can serve (``routeyard.gateway.capabilities``), built once.
        live_aiq: the routers' explored requests, added up (in Redis with ``redis_url``) for the live
            AIQ of ``/v1/stats``, the dashboard and Prometheus.
        explorer: explores the requests of the routers that explore, off their path
            (``routeyard.gateway.exploration``); its daily spend in Redis with ``redis_url``.
        affinity: keeps a conversation on its backend (``routeyard.gateway.session_affinity``; None
            when ``affinity`` is off); its sessions in Redis with ``redis_url``.
        response_cache: answers bought before, served again for $0 (``routeyard.gateway.response_cache``);
            in Redis with ``redis_url``.
    """

    settings: GatewaySettings
    usage_log: UsageLog
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    recent: RecentRequests = field(default_factory=RecentRequests)
    catalog: ModelCatalog = field(init=False)
    ready: bool = field(init=False)
    not_ready_reason: str = STILL_LOADING
    batcher: EmbeddingBatcher | None = None
    timeline: RequestTimeline = field(init=False)
    recorder: FanOutUsageLog = field(init=False)
    refusals: FanOutUsageLog = field(init=False)
    key_store: KeyStore | None = None
    authenticator: Authenticator = field(init=False)
    keys: KeyEnforcer | None = field(init=False)
    request_ids: RequestIds = field(init=False)
    reloader: PolicyReloader | None = None
    capabilities: CapabilityTable = field(init=False)
    live_aiq: LiveAiqStore = field(default_factory=InMemoryLiveAiq)
    explorer: Explorer = field(init=False)
    affinity: SessionAffinity | None = field(init=False)
    response_cache: ResponseCache = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = ModelCatalog(
            router_names={r.name for r in self.settings.routers},
            default_router=self.settings.default_router,
        )
        self.ready = not self.settings.routers
        settings = self.settings
        self.capabilities = CapabilityTable.of(settings.backends)
        self.timeline = RedisRequestTimeline(settings.redis_url) if settings.redis_url else RequestTimeline()
        self.recorder = FanOutUsageLog(self.metrics, self.recent, self.timeline, self.usage_log)
        self.refusals = FanOutUsageLog(self.metrics, self.recent, self.timeline)
        self.authenticator = Authenticator(settings.client_keys(), self.key_store, settings.admin_key())
        self.keys = KeyEnforcer(self.key_store) if self.key_store is not None else None
        self.request_ids = RequestIds(settings.request_id_secret())
        ledger: SpendLedger = (
            RedisSpendLedger(settings.redis_url) if settings.redis_url else InMemorySpendLedger()
        )
        self.explorer = Explorer(
            self.catalog.backends,
            self.recorder,
            self.live_aiq,
            self.metrics.exploration_skipped,
            ledger,
            store_prompts=settings.store_prompts,
        )
        self.affinity = (
            SessionAffinity(
                affinity_store(
                    settings.redis_url, settings.affinity_ttl_seconds, settings.affinity_max_sessions
                )
            )
            if settings.affinity
            else None
        )
        self.response_cache = ResponseCache(
            response_cache_store(settings), settings.cache_semantic_threshold, self._routing_embedding
        )

    async def _routing_embedding(self, request: ChatCompletionRequest) -> Vectors | None:
        """``request``'s prompt as the routers embed it (from the batcher's memory when a router just
        did), or None before the routers load and without routers."""
        if self.batcher is None:
            return None
        return await self.batcher.embed(embedding_text(request.prompt_turns()))


def runtime_of(app: Starlette) -> GatewayRuntime:
    """The runtime of an app ``create_app`` built; raises TypeError for any other app."""
    runtime = getattr(app.state, "runtime", None)
    if not isinstance(runtime, GatewayRuntime):
        raise TypeError("not a routeyard gateway app: app.state.runtime is not a GatewayRuntime")
    return runtime
