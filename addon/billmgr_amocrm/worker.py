"""``sbin/amocrm_task``: spool -> queue -> amoCRM.

``--once`` (cron, every minute): drain until nothing is due, then exit.
``--daemon`` (systemd): poll the spool and the queue every ~0.3 s; run the
reconciler and the check of amocrm.conf against amoCRM's catalog periodically, and
the token keep-alive daily.

One instance per host: an exclusive flock on ``var/amocrm/amocrm_task.lock``; a
second instance logs a line and exits 0 (so the cron entry is harmless while the
daemon runs). SIGTERM finishes the current batch and exits. A lost MySQL
connection or an amoCRM outage is logged and retried, never fatal to the daemon.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

from .foundation.clock import utcnow
from .foundation.exitstatus import ExitStatus
from .foundation.locks import FileLock
from .logsetup import setup_logging
from .paths import host_paths

if TYPE_CHECKING:
    from .bootstrap import App
    from .sync.outcomes import Report

log = logging.getLogger("billmgr_amocrm.worker")

POLL_SECONDS = 0.3
ERROR_PAUSE = 5.0
RECONCILE_EVERY_ENV = "BILLMGR_AMOCRM_RECONCILE_EVERY"
KEEP_ALIVE_EVERY_ENV = "BILLMGR_AMOCRM_KEEP_ALIVE_EVERY"


@dataclass(frozen=True)
class WorkerSettings:
    """How often the daemon runs the reconciler and the token keep-alive (both also run at start)."""

    reconcile_every: float = 3600.0
    keep_alive_every: float = 86400.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        """The environment may shorten them (tests, or a host that wants a tighter reconcile)."""
        default = cls()
        return cls(reconcile_every=float(environ.get(RECONCILE_EVERY_ENV, default.reconcile_every)),
                   keep_alive_every=float(environ.get(KEEP_ALIVE_EVERY_ENV, default.keep_alive_every)))


def drain_spool(app: App) -> int:
    from .store import spool
    from .store.resolve import spool_handler

    return int(spool.drain(str(app.paths.spool_dir), spool_handler(app.store, app.billing)))


def run_requested_export(app: App) -> bool:
    """The panel asked for an export (``service.start_export``): queue everything now."""
    from .exportrequest import run_requested_export as answer

    counts = answer(app.store, app.billing)
    if counts is None:
        return False
    log.info("export requested in the panel: %d entities queued", counts.total)
    return True


def sync_once(app: App, stop: Optional[Callable[[], bool]] = None) -> Report:
    """Spool -> queue -> amoCRM until nothing is due (or ``stop()`` says so between batches)."""
    from .errors import Reauthorize, Stop
    from .sync.outcomes import Report

    drain_spool(app)
    run_requested_export(app)
    try:
        engine = app.engine(_chunk_for(app))
    except (Reauthorize, Stop) as exc:
        log.warning("amoCRM cannot be used now; the queue is kept: %s", exc)
        return Report(stopped="reauthorize" if isinstance(exc, Reauthorize) else "stopped",
                      stop_reason=str(exc))
    if stop is not None:
        engine.should_stop = stop
    report = engine.run_pass()
    if report.handled or report.retried or report.stopped:
        log.info("pass: %d done, %d skipped, %d failed, %d retried%s", report.done, report.skipped,
                 report.failed, report.retried, f", stopped: {report.stopped}" if report.stopped else "")
    return report


def _chunk_for(app: App) -> int:
    """A large backlog (an export) goes at amoCRM's maximum batch; live events at the configured one."""
    from .bootstrap import EXPORT_CHUNK

    stats = app.store.queue_stats()
    return EXPORT_CHUNK if stats.depth > EXPORT_CHUNK else int(app.config.sync.batch_size)


class Daemon:
    def __init__(self, build: Callable[[], App], settings: WorkerSettings = WorkerSettings()) -> None:
        self.build = build
        self.settings = settings
        self.stop = threading.Event()
        self.app: Optional[App] = None
        # None: not yet in this process, so both run on the first tick
        self.last_reconcile: Optional[float] = None
        self.last_keep_alive: Optional[float] = None

    def handle_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        log.info("signal %d: finishing the current batch, then exiting", signum)
        self.stop.set()

    def run(self) -> ExitStatus:
        while not self.stop.is_set():
            try:
                if self.app is None:
                    self.app = self.build()
                self.tick(self.app)
                self.stop.wait(POLL_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the daemon outlives MySQL restarts and outages
                log.exception("worker error (retrying in %.0f s): %s", ERROR_PAUSE, exc)
                self._drop_app()
                self.stop.wait(ERROR_PAUSE)
        self._drop_app()
        return ExitStatus.OK

    def tick(self, app: App) -> None:
        from .errors import Reauthorize, Stop

        report = sync_once(app, stop=self.stop.is_set)
        if self.stop.is_set():
            return
        if report.stopped in ("reauthorize", "stopped"):
            self.stop.wait(ERROR_PAUSE * 6)
        if self._due(self.last_reconcile, self.settings.reconcile_every):
            from .sync.reconcile import reconcile

            reconcile(app.store, app.billing, app.rules, utcnow())
            from .service.catalog_health import log_catalog_health

            log_catalog_health(app)   # what the rules name that amoCRM lost, before records fail
            self.last_reconcile = time.monotonic()
        if self._due(self.last_keep_alive, self.settings.keep_alive_every):
            try:
                if app.amo().keep_alive():
                    log.info("token keep-alive: the token pair was rotated")
            except (Reauthorize, Stop) as exc:
                log.warning("token keep-alive skipped: %s", exc)
            self.last_keep_alive = time.monotonic()

    @staticmethod
    def _due(last: Optional[float], every: float) -> bool:
        return last is None or time.monotonic() - last >= every

    def _drop_app(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None


def run_once(build: Callable[[], App]) -> ExitStatus:
    app = build()
    try:
        report = sync_once(app)
    finally:
        app.close()
    if report.stopped in ("reauthorize", "stopped"):
        return ExitStatus.NOT_AUTHORIZED
    return ExitStatus.OK


def main(argv: Optional[Sequence[str]] = None) -> ExitStatus:
    parser = argparse.ArgumentParser(prog="amocrm_task", description="BILLmanager -> amoCRM sync worker")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="drain what is due, then exit (default; cron)")
    mode.add_argument("--daemon", action="store_true", help="keep running (systemd)")
    args = parser.parse_args(argv)
    settings = WorkerSettings.from_env(os.environ)
    paths = host_paths()
    setup_logging("amocrm_task", paths.task_log)
    lock = FileLock(paths.worker_lock, note_holder=True)
    if not lock.acquire(timeout=0):
        log.info("another amocrm_task holds %s; exiting", paths.worker_lock)
        return ExitStatus.OK
    from .bootstrap import build

    try:
        if args.daemon:
            daemon = Daemon(lambda: build(paths), settings)
            signal.signal(signal.SIGTERM, daemon.handle_signal)
            signal.signal(signal.SIGINT, daemon.handle_signal)
            log.info("amocrm_task daemon started (pid %d)", os.getpid())
            return daemon.run()
        return run_once(lambda: build(paths))
    except Exception as exc:  # noqa: BLE001 - one line in the log, not a traceback on cron's mail
        log.exception("amocrm_task --once failed: %s", exc)
        return ExitStatus.ERROR
    finally:
        lock.release()
