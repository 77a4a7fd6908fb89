"""Use cases of the export: ask the worker for one, or run one here with progress (``amocrm export``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

from ..domain import Kind
from ..exportrequest import answered, request_export
from .app import using
from .results import EngineWait, ExportResult, Progress

if TYPE_CHECKING:
    from ..bootstrap import App
    from ..sync.outcomes import Report


def start_export(*, app: Optional[App] = None) -> None:
    """Ask the worker to export everything (returns at once; the panel's button)."""
    with using(app) as live:
        request_export(live.store)


def resync_all(*, app: Optional[App] = None) -> None:
    start_export(app=app)


class _ExportTotal:
    """The progress line's total while the queueing still runs beside the sending.

    Until the queueing ends it is an estimate (rows pending before + ids queued, which
    counts a re-queued pending row twice); when it ends, the rows still pending plus those
    handled by then (off by the batch in flight at most); after the pass, exact."""

    def __init__(self, pending_before: int) -> None:
        self.pending_before = pending_before
        self.queued = 0
        self.settled: Optional[int] = None

    def value(self, handled: int) -> int:
        total = self.settled if self.settled is not None else self.pending_before + self.queued
        return max(total, handled)


def run_export(progress: Optional[Callable[[Progress], None]] = None, *, wait: bool = True,
               on_wait: Optional[Callable[[EngineWait], None]] = None, poll: float = 1.0,
               app: Optional[App] = None) -> ExportResult:
    """Queue everything and sync it now, in this process (the CLI's ``export``), with progress.

    The queueing runs on a connection and thread of its own (``sync.export.Enqueuer``)
    while the first contacts are already being sent; the engine drains a kind only once
    all of it is queued, and each queued chunk is committed with its resumable cursor.

    When another engine runs the sync, no second one starts beside it: the export is asked
    of that engine (as the panel's button does) and, with ``wait``, followed through
    ``on_wait`` until it is done (``by_other`` names who did it) or that engine stops (then
    this process takes over and the export resumes where it got)."""
    with using(app) as live:
        started = time.monotonic()
        lease = live.lease()
        if not lease.acquire():
            handed = _hand_over(live, wait, on_wait, poll, started)
            if handed is not None:
                return handed
        try:
            return _export_here(live, progress, started)
        finally:
            lease.release()


def _hand_over(app: App, wait: bool, on_wait: Optional[Callable[[EngineWait], None]], poll: float,
               started: float) -> Optional[ExportResult]:
    """Ask the running engine to export; follow it. None: it stopped and the lease is now ours."""
    from ..errors import UNKNOWN_HOLDER
    from ..exportrequest import export_requested
    from .queueing import engine_wait

    request_export(app.store)
    holder = UNKNOWN_HOLDER
    while True:
        # the holder last seen is named if it ends before the lease is read again
        waited = engine_wait(app, started, holder)
        holder = waited.holder
        if not wait:
            return ExportResult(queued={}, done=0, skipped=0, failed=0, retried=0, seconds=0.0,
                                stopped="busy", stop_reason=f"the sync engine is busy: {waited.holder} "
                                "is running it; it was asked to export everything")
        if not export_requested(app.store) and waited.due == 0:
            return ExportResult(queued={}, done=0, skipped=0, failed=0, retried=0,
                                seconds=time.monotonic() - started, by_other=waited.holder)
        if on_wait is not None:
            on_wait(waited)
        time.sleep(poll)
        if app.lease().acquire():
            return None


def _export_here(live: App, progress: Optional[Callable[[Progress], None]], started: float) -> ExportResult:
    from ..bootstrap import EXPORT_CHUNK
    from ..sync.export import Enqueuer
    from ..sync.outcomes import Report

    total = _ExportTotal(live.store.queue_stats().depth)
    engine = live.engine(EXPORT_CHUNK)
    side = live.side_connection()
    totals = Report()

    def report_progress() -> None:
        if progress:
            progress(Progress("sync", total.value(totals.handled), totals.handled, totals.failed,
                              time.monotonic() - started))

    def on_chunk(kind: Kind, count: int) -> None:
        total.queued += count

    def on_queued() -> None:
        # on the queueing thread and its connection, once everything is queued
        handled = totals.handled
        total.settled = handled + side.store.queue_stats().depth
        answered(side.store)   # the request is answered once everything is queued

    def on_batch(kind: Kind, batch: Report) -> None:
        totals.add(batch)
        report_progress()

    try:
        enqueuer = Enqueuer(side.store, side.billing, on_chunk=on_chunk, on_done=on_queued).start()
        engine.on_batch = on_batch
        engine.feed = enqueuer
        try:
            report = engine.run_pass()
        finally:
            # a stopped pass (amoCRM unavailable) still leaves everything queued for the worker
            counts = enqueuer.finish()
    finally:
        side.close()
    total.settled = totals.handled + live.store.queue_stats().depth
    report_progress()
    return ExportResult(queued={k.value: n for k, n in counts.queued.items()}, done=report.done,
                        skipped=report.skipped, failed=report.failed, retried=report.retried,
                        seconds=time.monotonic() - started, stopped=report.stopped,
                        stop_reason=report.stop_reason)
