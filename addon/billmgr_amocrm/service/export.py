"""Use cases of the export: ask the worker for one, or run one here with progress (``amocrm export``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional

from ..domain import Kind
from ..exportrequest import answered, request_export
from .app import using
from .results import ExportResult, Progress

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


def run_export(progress: Optional[Callable[[Progress], None]] = None, *,
               app: Optional[App] = None) -> ExportResult:
    """Queue everything and sync it now, in this process (the CLI's ``export``), with progress.

    The queueing runs on a connection and thread of its own (``sync.export.Enqueuer``)
    while the first contacts are already being sent; the engine drains a kind only once
    all of it is queued, and each queued chunk is committed with its resumable cursor."""
    from ..bootstrap import EXPORT_CHUNK
    from ..sync.export import Enqueuer
    from ..sync.outcomes import Report

    with using(app) as live:
        started = time.monotonic()
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
