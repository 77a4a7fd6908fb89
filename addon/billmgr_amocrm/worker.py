"""``sbin/amocrm_task``: spool -> queue -> amoCRM.

``--once`` (cron, every minute): drain until nothing is due, then exit.
``--daemon`` (systemd): poll the spool and the queue every ~0.3 s. Both run the
periodic duties (the reconciler, the check of amocrm.conf against amoCRM's catalog,
the token keep-alive) on the same cadence: their last
runs are kept in the database and in var/amocrm (schedule.py).

One engine per database (store/lease.py): a worker that finds another engine running
(another host's worker, or ``amocrm sync``) only moves events into the queue; the daemon
keeps the lease between passes and takes it when it is free.

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

from .failures import RepeatedFailures, log_failure
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

    return int(spool.drain(str(app.paths.spool_dir), spool_handler(app.store, app.billing, app.config.notes)))


def run_requested_export(app: App) -> bool:
    """The panel asked for an export (``service.start_export``): queue everything now."""
    from .exportrequest import run_requested_export as answer

    counts = answer(app.store, app.billing)
    if counts is None:
        return False
    log.info("export requested in the panel: %d entities queued", counts.total)
    return True


def sync_once(app: App, stop: Optional[Callable[[], bool]] = None, *, keep_lease: bool = False) -> Report:
    """Spool -> queue -> amoCRM until nothing is due (or ``stop()`` says so between batches).

    Events always move from the spool into the queue; the sending needs the engine lease
    (one engine per database, store/lease.py): when another engine has it, the pass is left
    to that engine (``stopped == "busy"``). ``keep_lease``: the daemon keeps the lease
    between passes; everyone else gives it back."""
    from .errors import EngineBusy
    from .sync.outcomes import Report

    drain_spool(app)
    lease = app.lease()
    if not lease.acquire():
        busy = EngineBusy(lease.holder())
        log.debug("sync engine busy: %s runs it; queued events wait for it", busy.who)
        return Report(stopped="busy", stop_reason=str(busy), busy_with=busy.who)
    try:
        run_requested_export(app)
        report = _engine_pass(app, stop)
        if not report.stopped:
            # after the pass: a note waits for its contact or lead, which the pass may have made
            note_payments(app)
        return report
    finally:
        if not keep_lease:
            lease.release()


def note_payments(app: App) -> None:
    """The pending payment notes (sync/notes.py), under the engine lease the caller holds."""
    from .errors import AmoError
    from .foundation.clock import utcnow
    from .sync.notes import note_payments as make_notes
    from .sync.timeline import made_since

    if not app.store.has_pending_notes():
        return
    timeline = app.timeline()
    if timeline.begin() is not None:
        return             # the database went back and its restore is not over: nothing is sent
    now = utcnow()
    try:
        report = make_notes(app.store, app.activities(), app.billing, now=now,
                            settle_after=float(app.config.sync.settle_after), lang=app.config.sync.language,
                            made_since=made_since(app.store, now))
    except AmoError as exc:    # not authorized, an outage, a refused read: the rows wait as they are
        log.warning("payment notes wait: %s", exc)
        return
    if report.done:
        timeline.end()
    if report.done or report.failed or report.retried:
        log.info("payment notes: %d made, %d failed, %d retried, %d waiting", report.done, report.failed,
                 report.retried, report.waiting)


def _engine_pass(app: App, stop: Optional[Callable[[], bool]]) -> Report:
    from .errors import FixData, Reauthorize, Stop
    from .sync.adopt import adoption_pending
    from .sync.fields import fail_pending
    from .sync.match import matching_pending
    from .sync.outcomes import Report, unchanged_words

    def idle(depth: int) -> bool:
        # an adoption asked for (``amocrm adopt``) runs even with nothing queued
        return not (depth or adoption_pending(app.store) or matching_pending(app.store)
                    or app.store.unmarks_pending())

    stats = app.store.queue_stats()
    if idle(stats.depth):
        # nothing to send, but a restore of the database is noticed (and dealt with once it is
        # over: everything is queued then) without waiting for the next event; now and then,
        # not at every 0.3 s tick of the daemon
        timeline = app.timeline()
        if not timeline.idle_check_due():
            return Report()
        held = timeline.begin()
        if held is not None:
            return Report(stopped="restoring", stop_reason=held)
        stats = app.store.queue_stats()
        if idle(stats.depth):
            return Report()
    try:
        engine = app.engine(_chunk_for(app, stats.depth))
    except (Reauthorize, Stop) as exc:
        log.warning("amoCRM cannot be used now; the queue is kept: %s", exc)
        return Report(stopped="reauthorize" if isinstance(exc, Reauthorize) else "stopped",
                      stop_reason=str(exc))
    except FixData as exc:
        # amoCRM refused to set up the marker fields (400): asking again cannot help, so the
        # records waiting for them fail now with amoCRM's words (an admin retries them)
        failed = fail_pending(app.store, exc)
        return Report(failed=failed, stopped="refused", stop_reason=str(exc))
    if stop is not None:
        engine.should_stop = stop
    report = engine.run_pass()
    if report.handled or report.retried or report.stopped:
        log.info("pass: %d done, %d skipped, %d failed, %d retried%s%s", report.done, report.skipped,
                 report.failed, report.retried, unchanged_words(report),
                 f", stopped: {report.stopped}" if report.stopped else "")
    return report


def _chunk_for(app: App, depth: int) -> int:
    """A large backlog (an export) goes at amoCRM's maximum batch; live events at the configured one."""
    from .bootstrap import EXPORT_CHUNK

    return EXPORT_CHUNK if depth > EXPORT_CHUNK else int(app.config.sync.batch_size)


def run_duties(app: App, settings: WorkerSettings) -> list[str]:
    """The periodic duties that are due (schedule.py); database-wide ones only with the lease."""
    from . import schedule

    plan = schedule.duties(settings.reconcile_every, settings.keep_alive_every)
    return schedule.run_due(app, plan, holds_lease=app.lease().held)


class Daemon:
    def __init__(self, build: Callable[[], App], settings: WorkerSettings = WorkerSettings()) -> None:
        self.build = build
        self.settings = settings
        self.stop = threading.Event()
        self.app: Optional[App] = None
        self.last_heartbeat = -1e9
        self.said_busy = False
        # a failure repeating every few seconds (MySQL down, a wrong password) is said once
        self.failures = RepeatedFailures(log)

    def handle_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        log.info("signal %d: finishing the current batch, then exiting", signum)
        self.stop.set()

    def run(self) -> ExitStatus:
        while not self.stop.is_set():
            try:
                if self.app is None:
                    self.app = self.build()
                self.tick(self.app)
                self.failures.recovered("the worker works again")
                self.stop.wait(POLL_SECONDS)
            except Exception as exc:  # noqa: BLE001 - the daemon outlives MySQL restarts and outages
                self.failures.failed(f"worker error, retrying every {ERROR_PAUSE:.0f} s", exc)
                self._drop_app()
                self.stop.wait(ERROR_PAUSE)
        self._drop_app()
        return ExitStatus.OK

    def tick(self, app: App) -> None:
        app.refresh_settings()      # the panel saves while the daemon runs: its next pass works by it
        self._keep_lease_alive(app)
        report = sync_once(app, stop=self.stop.is_set, keep_lease=True)
        self._say_busy(report)
        if self.stop.is_set():
            return
        if report.stopped in ("reauthorize", "stopped"):
            self.stop.wait(ERROR_PAUSE * 6)
        run_duties(app, self.settings)

    def _keep_lease_alive(self, app: App) -> None:
        """Now and then: the lease connection must not idle out (wait_timeout), its registry row
        stays fresh, and this host's share of the rate is renewed (hosts.py)."""
        from .errors import LeaseLost
        from .hosts import PUBLISH_EVERY

        if time.monotonic() - self.last_heartbeat < PUBLISH_EVERY:
            return
        self.last_heartbeat = time.monotonic()
        try:
            app.heartbeat()
        except LeaseLost as exc:
            log.warning("%s; taking it again when free", exc)

    def _say_busy(self, report: Report) -> None:
        """Once, not every 0.3 s: another engine runs, this worker only moves events into the queue."""
        busy = report.stopped == "busy"
        if busy and not self.said_busy:
            log.info("%s; this worker moves events into the queue and takes over when it stops",
                     report.stop_reason)
        self.said_busy = busy

    def _drop_app(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None


def run_once(build: Callable[[], App], settings: WorkerSettings = WorkerSettings()) -> ExitStatus:
    app = build()
    try:
        # the duties first: what the reconciler queues is sent by this same run
        app.lease().acquire()
        app.heartbeat()
        run_duties(app, settings)
        report = sync_once(app, keep_lease=True)
        if report.stopped == "busy":
            log.info("%s; the events are queued for it", report.stop_reason)
    finally:
        app.close()       # gives the lease back
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
        return run_once(lambda: build(paths), settings)
    except Exception as exc:  # noqa: BLE001 - one line in the log, not a traceback on cron's mail
        log_failure(log, "amocrm_task --once failed", exc)
        return ExitStatus.ERROR
    finally:
        lock.release()
