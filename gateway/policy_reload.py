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
3. **Gate**, router by router of the candidate (:func:`gate`): accepted when
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
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeyard.evaluation.replay import replay
from routeyard.evaluation.replayed_routers import ReplaySettings
from routeyard.gateway.assembly import load_routers
from routeyard.gateway.deployed_replay import deployed_routers
from routeyard.gateway.errors import GatewayError, InvalidRequestError, NotReadyError
from routeyard.gateway.router import Router
from routeyard.gateway.routers import RouterConfig
from routeyard.gateway.runtime import GatewayRuntime
from routeyard.gateway.settings import ConfigError, GatewaySettings, load_settings
from routeyard.predictor.embedder import Embedder
from routeyard.predictor.long_format import load_long_table
from routeyard.predictor.outcome_table import OutcomeTable
from routeyard.predictor.split import split_by_dataset

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
class RouterVerdict:
    """One router's gate: its pooled AIQ serving now and in the candidate (None: none), and why."""

    router: str
    current_aiq: float | None
    candidate_aiq: float | None
    accepted: bool
    reason: str

    def body(self) -> dict[str, Any]:
        return {
            "router": self.router,
            "current_aiq": _finite(self.current_aiq),
            "candidate_aiq": _finite(self.candidate_aiq),
            "accepted": self.accepted,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReloadVerdict:
    """A reload's outcome: ``accepted`` (and swapped) when every router's verdict is."""

    accepted: bool
    tolerance: float
    table: str
    routers: tuple[RouterVerdict, ...]
    not_reloaded: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        """The answer of ``POST /admin/reload``."""
        return {
            "object": "routeyard.reload",
            "verdict": "accepted" if self.accepted else "rejected",
            "accepted": self.accepted,
            "tolerance": self.tolerance,
            "table": self.table,
            "routers": [r.body() for r in self.routers],
            "not_reloaded": list(self.not_reloaded),
        }

    def summary(self) -> str:
        """One log line: the verdict and each router's AIQs (no prompt text)."""
        routers = ", ".join(
            f"{r.router} {_aiq(r.current_aiq)} -> {_aiq(r.candidate_aiq)}{'' if r.accepted else ' (worse)'}"
            for r in self.routers
        )
        return (
            f"reload {'accepted' if self.accepted else 'rejected'} (tolerance {self.tolerance:g}): {routers}"
        )


@dataclass(frozen=True)
class ReplayedAIQs:
    """A config's routers replayed: pooled AIQ by router, and the routers not replayable with why."""

    aiq: dict[str, float]
    skipped: dict[str, str]


def gate(
    current: ReplayedAIQs,
    candidate: ReplayedAIQs,
    current_configs: Sequence[RouterConfig],
    candidate_configs: Sequence[RouterConfig],
    tolerance: float,
) -> tuple[RouterVerdict, ...]:
    """Each router's verdict (the rule is the module docstring's step 3), candidate routers first, then
    the routers the candidate drops."""
    serving = {c.name: c for c in current_configs}
    verdicts = []
    for config in candidate_configs:
        name = config.name
        now, new = current.aiq.get(name), candidate.aiq.get(name)
        if name in candidate.skipped:
            unchanged = name in serving and serving[name] == config
            why = f"not replayable ({candidate.skipped[name]})"
            reason = f"{why}; unchanged" if unchanged else f"{why}: a changed router must be replayed"
            verdicts.append(RouterVerdict(name, now, None, unchanged, reason))
        elif now is None:
            verdicts.append(RouterVerdict(name, None, new, True, "no current AIQ (new, or not replayable)"))
        else:
            assert new is not None
            accepted = new >= now - tolerance  # False for NaN
            reason = f"AIQ {'≥' if accepted else '<'} current − tolerance"
            verdicts.append(RouterVerdict(name, now, new, accepted, reason))
    dropped = [name for name in serving if name not in {c.name for c in candidate_configs}]
    verdicts += [RouterVerdict(n, current.aiq.get(n), None, True, "removed") for n in dropped]
    return tuple(verdicts)


def replayed_aiqs(
    routers: Sequence[RouterConfig], backends: Sequence[str], table: OutcomeTable, embedder: Embedder
) -> ReplayedAIQs:
    """Each router of ``routers`` replayed as deployed on ``table``'s test split (judges scoring those
    rows), its pooled AIQ; raises ``ValueError`` for a router whose artifact does not fit."""
    settings = ReplaySettings(routers=("deployed",))
    splits = split_by_dataset(table, seed=settings.seed)
    rows = np.sort(np.concatenate([split.test for split in splits.values()]))
    deployment = deployed_routers(routers, backends, table, embedder, rows)
    if not deployment.routers:
        return ReplayedAIQs({}, deployment.skipped)
    report = replay(deployment.table, settings, deployed=deployment.routers)
    return ReplayedAIQs({r.curve.router: r.aiq for r in report.pooled.routers}, deployment.skipped)


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


def _aiq(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _finite(value: float | None) -> float | None:
    """``value``, or None for NaN (JSON has no NaN)."""
    return None if value is None or math.isnan(value) else value
