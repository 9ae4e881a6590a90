"""Run N worker processes on one listening socket; replace a worker only when it dies; stop in bounded time.

Why not uvicorn's own ``--workers`` (0.54's ``Multiprocess``): it pings every worker through a pipe with a
5 s timeout and kills one that does not answer, and a worker cannot answer before its interpreter has
started, re-imported the parent's ``__main__`` (multiprocessing's *spawn*: for ``routeyard`` that is every
command, torch included) and built the app. On a busy machine (a pod with a CPU limit) that takes longer
than 5 s, so workers were killed and restarted forever and the port never served; and SIGTERM is acted on
only between rounds of pings (up to 5 s per silent worker), then the workers are joined without a time
limit. Here nothing needs to answer while it starts:

- the supervisor binds the socket once and starts each worker as a plain subprocess (``command``, e.g.
  ``python -m routeyard.cli.serve_worker``) that inherits the socket's descriptor, named in the
  environment variable :data:`SOCKET_FD_VARIABLE` (read it with :func:`inherited_listener`), and its
  slot, 0 … N-1, in :data:`WORKER_INDEX_VARIABLE` (read it with :func:`worker_index`; a worker that
  replaces one has the same slot, so a port derived from it is free again);
- a worker is replaced only when its process has exited (at most once per ``restart_delay`` seconds per
  worker); one that exits with uvicorn's ``STARTUP_FAILURE`` (3: its app failed to start, and would again)
  stops the supervisor instead;
- SIGTERM or SIGINT: every worker gets SIGTERM, then ``grace_seconds`` to exit, then SIGKILL (one blocked
  in its start-up or its shutdown); a second signal kills at once;
- SIGHUP is passed on to every worker (each reloads its routers, gated by replay: ``/admin/reload``); a
  worker starts with SIGHUP ignored (inherited through exec), so one that is still starting, and will load
  the config as it is now anyway, is not killed by it;
- every worker also inherits the read end of a pipe whose only write end the supervisor holds
  (:data:`SUPERVISOR_FD_VARIABLE`): :func:`stop_with_supervisor` makes a worker SIGTERM itself, and exit
  ``grace_seconds`` later, when the supervisor is gone even if it was killed, so no worker is orphaned.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from uvicorn.config import STARTUP_FAILURE

SOCKET_FD_VARIABLE = "ROUTEYARD_WORKER_SOCKET_FD"
SUPERVISOR_FD_VARIABLE = "ROUTEYARD_SUPERVISOR_FD"
WORKER_INDEX_VARIABLE = "ROUTEYARD_WORKER_INDEX"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECONDS = 0.1  # how often the supervisor looks at its workers and at the signals it received

logger = logging.getLogger("routeyard.serve")


def bind_listener(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A TCP socket listening on ``host:port`` (IPv6 when ``host`` has a colon), shareable by workers.

    Raises OSError when the address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=backlog)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started_at: float


class WorkerSupervisor:
    """``workers`` copies of ``command`` serving ``listener``, kept running until SIGTERM or SIGINT.

    ``run`` returns the exit code for the command line: 0 after a stop signal, ``STARTUP_FAILURE`` (3) when a
    worker could not start. It must run in the main thread (it installs signal handlers, restored on return).
    """

    def __init__(
        self,
        command: Sequence[str],
        listener: socket.socket,
        workers: int,
        *,
        grace_seconds: float = 10.0,
        restart_delay: float = 1.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.command = list(command)
        self.listener = listener
        self.workers = workers
        self.grace_seconds = grace_seconds
        self.restart_delay = restart_delay
        self._signals: list[int] = []
        self._hangups = 0  # SIGHUPs received and not yet passed on to the workers

    def run(self) -> int:
        """Start the workers, keep them running until a stop signal, stop them; the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        watch_read, watch_write = os.pipe()  # the write end never leaves this process (PEP 446)
        slots: list[_Worker | None] = [None] * self.workers
        try:
            code = self._supervise(slots, watch_read)
            self._stop_all(slots)
            return code
        finally:
            # the workers the grace period did not stop (all of them if supervising itself failed)
            self._kill_all(slots)
            os.close(watch_read)
            os.close(watch_write)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)

    def _on_hangup(self, sig: int, frame: FrameType | None) -> None:
        self._hangups += 1

    def _pass_on_hangups(self, slots: list[_Worker | None]) -> None:
        """SIGHUP every running worker once for the SIGHUPs received since the last time."""
        if not self._hangups:
            return
        self._hangups = 0
        for worker in slots:
            if worker is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGHUP)

    def _supervise(self, slots: list[_Worker | None], watch_read: int) -> int:
        """Keep every slot filled until a stop signal (returns 0) or a start-up failure (returns 3)."""
        while not self._signals:
            for index, worker in enumerate(slots):
                if worker is not None and worker.process.poll() is None:
                    continue
                if worker is not None:
                    code = worker.process.returncode
                    if code == STARTUP_FAILURE:
                        logger.error("worker [%d] failed to start: stopping", worker.process.pid)
                        return STARTUP_FAILURE
                    if time.monotonic() - worker.started_at < self.restart_delay:
                        continue  # it died right after starting: do not spin
                    logger.warning(
                        "worker [%d] exited with code %s: starting another", worker.process.pid, code
                    )
                slots[index] = self._start(watch_read, index)
            self._pass_on_hangups(slots)
            time.sleep(POLL_SECONDS)
        logger.info("received %s: stopping the workers", signal.Signals(self._signals[0]).name)
        return 0

    def _start(self, watch_read: int, index: int) -> _Worker:
        """Start the worker of slot ``index``."""
        fds = {SOCKET_FD_VARIABLE: self.listener.fileno(), SUPERVISOR_FD_VARIABLE: watch_read}
        process = subprocess.Popen(
            self.command,
            env={
                **os.environ,
                **{name: str(fd) for name, fd in fds.items()},
                WORKER_INDEX_VARIABLE: str(index),
            },
            pass_fds=tuple(fds.values()),
            preexec_fn=_ignore_hangups,  # until the worker's app installs its reload on SIGHUP
        )
        logger.info("worker [%d] started (slot %d)", process.pid, index)
        return _Worker(process, time.monotonic())

    def _stop_all(self, slots: list[_Worker | None]) -> None:
        """SIGTERM every worker; return once all exited, the grace period is over or a second signal came."""
        running = [w.process for w in slots if w is not None and w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        signals_seen = len(self._signals)
        deadline = time.monotonic() + self.grace_seconds
        while any(p.poll() is None for p in running):
            if time.monotonic() >= deadline or len(self._signals) > signals_seen:
                break
            time.sleep(POLL_SECONDS)
        for process in running:
            if process.poll() is None:
                logger.warning("worker [%d] still running after SIGTERM: killing it", process.pid)

    @staticmethod
    def _kill_all(slots: list[_Worker | None]) -> None:
        """SIGKILL every worker still running, and reap them all."""
        for worker in slots:
            if worker is not None and worker.process.poll() is None:
                worker.process.kill()
            if worker is not None:
                worker.process.wait()


def inherited_listener() -> socket.socket:
    """In a worker: the listening socket its supervisor passed (raises KeyError outside a worker)."""
    return socket.socket(fileno=int(os.environ[SOCKET_FD_VARIABLE]))


def worker_index() -> int:
    """In a worker: its slot, 0 … N-1 (a replacement has the slot of the worker it replaces); 0 outside."""
    return int(os.environ.get(WORKER_INDEX_VARIABLE, "0"))


def stop_with_supervisor(grace_seconds: float = 10.0) -> None:
    """In a worker: once the supervisor has exited, SIGTERM this process, and exit ``grace_seconds`` later.

    Does nothing outside a worker. Runs in a daemon thread that blocks on the inherited pipe, which reads
    end-of-file only when the supervisor, the one holder of its write end, is gone.
    """
    fd = os.environ.get(SUPERVISOR_FD_VARIABLE)
    if fd is None:
        return

    def watch() -> None:
        while os.read(int(fd), 1):
            pass  # nothing is ever written: only end-of-file ends the loop
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _ignore_hangups() -> None:
    """In a worker between fork and exec: ignore SIGHUP (an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
