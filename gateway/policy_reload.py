"""Hot reload gated by replay: ``POST /admin/reload`` and SIGHUP load the config file again, replay the
candidate routers and the serving ones on a held-out table, and swap only when the candidate is no worse.

One reload (:meth:`PolicyReloader.reload`):

1. **Load** the config file the gateway was started from (``create_app(config_path=…)``; ``routeyard
   serve`` passes it) as ``serve`` loads it, and build its routers with ``assembly.load_routers`` over
   the gateway's own embedding batcher and backends. What a reload changes is the routing only: the
   routers and ``default_router``. The file's other settings (backends, limits, keys, and the reload's
   own ``reload_table`` and ``reload_tolerance``, so a candidate cannot loosen its own gate) need a
   restart; the answer lists those that differ (``not_reloaded``). A candidate whose backends differ from
   the serving ones is refused (422 ``invalid_config``), as is one that does not load.
2. **Replay** both configs offline (``routeyard.gateway.deployed_replay``, exactly what ``routeyard replay
   --config`` scores) on the running settings' ``reload_table`` (a long outcome table, as ``routeyard
   export`` writes; the replay scores its test split, seed 42, per dataset) and take each router's pooled
   AIQ (``routeyard.evaluation.replay``: the unweighted mean over datasets of the AIQ of its curve).
   Replaying a held-out slice of the *logged* outcomes instead of a configured table is not done yet.
3. **Gate**, router by router of the candidate (``routeyard.gateway.reload_gate.gate``): accepted when
   ``AIQ_candidate ≥ AIQ_current − reload_tolerance``; a router with no current AIQ (new, or the serving
   one could not be replayed) is accepted; a candidate router that cannot be replayed offline (an LLM
   grader) is accepted only when its config is unchanged; a router the candidate drops is accepted. The
   reload is accepted when every router is.
4. **Swap**, only when accepted: ``ModelCatalog.install``, one reference assignment on the event loop. A
   request that already holds a router finishes on it; nothing waits, since loading and replaying run in
   a worker thread.

Only one reload runs at a time: another one meanwhile is refused with 409 ``reload_in_progress``. The
verdict is logged (router names and AIQs; never prompt text). The serving routers are replayed from
their config too, so retrain into a new artifact directory and point the config at it: an artifact
overwritten in place is read as the candidate by both replays.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routeyard.gateway.assembly import load_routers
from routeyard.gateway.errors import GatewayError, InvalidRequestError, NotReadyError
from routeyard.gateway.reload_gate import ReloadVerdict, gate, replayed_aiqs
from routeyard.gateway.router import Router
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.settings import ConfigError, GatewaySettings, load_settings
from routeyard.predictor.long_format import load_long_table
from routeyard.predictor.outcome_table import OutcomeTable

logger = logging.getLogger("routeyard.gateway.reload")

RELOADED_SETTINGS = frozenset({"routers", "default_router"})
"""What a reload changes; every other setting needs a restart."""


class ReloadInProgressError(InvalidRequestError):
    status = 409
    default_code = "reload_in_progress"


class ReloadNotConfiguredError(InvalidRequestError):
    """The gateway cannot gate a reload: no config file, no ``reload_table``, or an unreadable one."""

    status = 409
    default_code = "reload_not_configured"


class CandidateConfigError(InvalidRequestError):
    """The config file does not load, its routers do not build, or it changes what needs a restart."""

    status = 422
    default_code = "invalid_config"


@dataclass(frozen=True)
class _Candidate:
    settings: GatewaySettings
    routers: dict[str, Router]
    verdict: ReloadVerdict


class PolicyReloader:
    """Reloads ``runtime``'s routers from ``config_path`` (see the module docstring)."""

    def __init__(self, runtime: GatewayRuntime, config_path: Path | None) -> None:
        self.runtime = runtime
        self.config_path = config_path
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def reload(self) -> ReloadVerdict:
        """Load, replay, gate and (when accepted) swap; raises ReloadInProgressError (409) while another
        reload runs, NotReadyError (503) while the routers load, ReloadNotConfiguredError (409) and
        CandidateConfigError (422)."""
        if self._running:  # checked and set with no await between: one reload at a time
            raise ReloadInProgressError("a reload is already running; try again when it has answered")
        self._running = True
        try:
            runtime = self.runtime
            if not runtime.ready:
                raise NotReadyError(f"not ready: {runtime.not_ready_reason}")
            serving = runtime.settings
            candidate = await asyncio.to_thread(self._evaluate, serving)
            if candidate.verdict.accepted:
                runtime.catalog.install(candidate.routers, candidate.settings.default_router)
                runtime.settings = serving.model_copy(
                    update={name: getattr(candidate.settings, name) for name in RELOADED_SETTINGS}
                )
            logger.info("%s", candidate.verdict.summary())
            return candidate.verdict
        finally:
            self._running = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop :meth:`reload_soon` schedules on (the app's, bound as it starts)."""
        self._loop = loop

    def reload_soon(self) -> bool:
        """Start a reload on the app's loop from any thread or a signal handler (False, nothing done,
        before the app serves); its verdict, or why it was refused, is logged."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(self._start_logged_reload)
        return True

    def _start_logged_reload(self) -> None:
        logger.info("reloading the routers from %s (signal)", self.config_path)
        task = asyncio.get_running_loop().create_task(self._logged_reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _logged_reload(self) -> None:
        try:
            await self.reload()
        except GatewayError as exc:
            logger.warning("reload refused (%s): %s", exc.code, exc.message)
        except Exception as exc:  # a signal-triggered reload must never take the gateway down
            logger.error("reload failed (%s)", type(exc).__name__)

    def _evaluate(self, serving: GatewaySettings) -> _Candidate:
        """In a worker thread: the candidate's settings, routers and verdict."""
        table = self._table(serving)
        candidate = self._candidate_settings(serving)
        batcher = self.runtime.batcher
        if batcher is None:
            raise ReloadNotConfiguredError("the gateway was started without routers: restart to add some")
        try:
            routers = load_routers(candidate, batcher, self.runtime.catalog.backends)
        except ConfigError as exc:
            raise CandidateConfigError(str(exc)) from exc
        backends = [b.name for b in serving.backends]
        try:
            now = replayed_aiqs(serving.routers, backends, table, batcher.embedder)
        except ValueError as exc:
            raise ReloadNotConfiguredError(f"the serving routers do not replay: {exc}") from exc
        try:
            new = replayed_aiqs(candidate.routers, backends, table, batcher.embedder)
        except ValueError as exc:
            raise CandidateConfigError(f"the candidate routers do not replay: {exc}") from exc
        verdicts = gate(now, new, serving.routers, candidate.routers, serving.reload_tolerance)
        verdict = ReloadVerdict(
            all(v.accepted for v in verdicts),
            serving.reload_tolerance,
            str(serving.reload_table),
            verdicts,
            _not_reloaded(serving, candidate),
        )
        return _Candidate(candidate, routers, verdict)

    def _table(self, serving: GatewaySettings) -> OutcomeTable:
        if self.config_path is None:
            raise ReloadNotConfiguredError("the gateway was not started from a config file")
        if serving.reload_table is None:
            raise ReloadNotConfiguredError("set reload_table: the table both policies are replayed on")
        try:
            return load_long_table(serving.reload_table.expanduser())
        except (OSError, ValueError) as exc:
            raise ReloadNotConfiguredError(f"reload_table does not load ({type(exc).__name__})") from exc

    def _candidate_settings(self, serving: GatewaySettings) -> GatewaySettings:
        assert self.config_path is not None
        try:
            candidate = load_settings(self.config_path)
        except ConfigError as exc:
            raise CandidateConfigError(str(exc)) from exc
        if _dumped(candidate.backends) != _dumped(serving.backends):
            raise CandidateConfigError("the config changes the backends: restart the gateway for that")
        return candidate


def _not_reloaded(serving: GatewaySettings, candidate: GatewaySettings) -> tuple[str, ...]:
    """The settings the file changes that a reload does not apply."""
    now, new = serving.model_dump(), candidate.model_dump()
    return tuple(sorted(k for k in now if k not in RELOADED_SETTINGS and now[k] != new.get(k)))


def _dumped(configs: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [config.model_dump() for config in configs]
