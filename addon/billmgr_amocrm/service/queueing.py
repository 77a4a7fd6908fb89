"""Use cases on the queue: a sync pass now, the reconciler, resync, the failed records, unlink."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from ..domain import KIND_ORDER
from ..errors import UNKNOWN_HOLDER
from ..foundation.clock import utcnow
from .app import kind_of, using
from .results import EngineWait, FailedRow

if TYPE_CHECKING:
    from ..bootstrap import App
    from ..sync.outcomes import Report


def sync_now(*, wait: bool = True, on_wait: Optional[Callable[[EngineWait], None]] = None,
             poll: float = 1.0, app: Optional[App] = None) -> Report:
    """One worker pass in this process (spool -> queue -> amoCRM).

    When another engine runs the sync (the daemon, cron's --once, another host), this never
    runs a second one beside it: with ``wait`` it reports progress through ``on_wait`` until
    that engine has sent everything due (``by_other`` names it) or stops (then this process
    takes the lease and runs the pass itself); without, it returns ``stopped == "busy"``."""
    from ..worker import sync_once

    with using(app) as live:
        started = time.monotonic()
        waited_for = ""
        while True:
            report = sync_once(live)
            if report.stopped != "busy" or not wait:
                if waited_for and not (report.handled or report.retried or report.stopped):
                    report.by_other = waited_for     # it finished just before this pass began
                return report
            # named as the busy answer named it: the lease may be free again by the time it is read
            waited = engine_wait(live, started, report.busy_with or UNKNOWN_HOLDER)
            waited_for = waited.holder
            if waited.due == 0:
                report.stopped, report.by_other = None, waited.holder
                return report
            if on_wait is not None:
                on_wait(waited)
            time.sleep(poll)


def engine_wait(app: App, started: float, known_holder: str = UNKNOWN_HOLDER) -> EngineWait:
    """Where the queue stands while another engine runs the sync. ``known_holder``: who held
    the lease when last seen, named when it has ended before the lease is read again."""
    from ..exportrequest import export_requested

    holder = app.lease().holder()
    stats = app.store.queue_stats()
    return EngineWait(holder=holder.describe() if holder is not None else known_holder,
                      due=app.store.due_count(utcnow()), pending=stats.depth,
                      export_requested=export_requested(app.store), elapsed=time.monotonic() - started)


def reconcile(*, full: bool = False, app: Optional[App] = None) -> dict[str, int]:
    """The reconciler now (with its daily re-check of linked entities when due, or ``full``), and the
    payments no event brought (``payment_notes``: new note rows, shown when there are any)."""
    from ..sync.notes import reconcile_payments
    from ..sync.reconcile import reconcile as run

    with using(app) as live:
        queued = run(live.store, live.billing, live.rules, utcnow(), live.stored_context(), full=full,
                     settings_version=live.settings.source_version)
        result = {k.value: n for k, n in queued.items()}
        notes = reconcile_payments(live.store, live.billing, live.config.notes, utcnow())
        if notes:
            result["payment_notes"] = notes
        return result


def resync(kind: Any, ids: Sequence[int], *, app: Optional[App] = None) -> int:
    """Queue these entities for a fresh push of their current state."""
    chosen = kind_of(kind)
    with using(app) as live, live.store.transaction():
        for billmgr_id in ids:
            live.store.enqueue(chosen, int(billmgr_id), "resync")
    return len(ids)


def retry_failed(kind: Any = None, ids: Optional[Sequence[int]] = None, *, app: Optional[App] = None) -> int:
    """Revive dead-letter rows (all, of a kind, or by queue row id); returns how many."""
    chosen = kind_of(kind) if kind else None
    with using(app) as live:
        return int(live.store.retry_failed(chosen, list(ids) if ids is not None else None))


def failed(kind: Any = None, limit: int = 100, *, app: Optional[App] = None) -> list[FailedRow]:
    chosen = kind_of(kind) if kind else None
    with using(app) as live:
        return [FailedRow(f.id, f.kind.value, f.billmgr_id, f.attempts, f.last_error)
                for f in live.store.failed(chosen, limit=limit)]


def adopt(*, app: Optional[App] = None) -> None:
    """Ask the next sync pass to bind, before it sends anything, every entity amoCRM holds with
    this module's marker whose billing entity exists and is bound to nothing (``sync/adopt.py``):
    after the module's tables were lost while billing and amoCRM kept their data."""
    from ..sync.adopt import request_adoption

    with using(app) as live:
        request_adoption(live.store, KIND_ORDER)


def unlink(kind: Any, ids: Sequence[int], *, app: Optional[App] = None) -> int:
    """Forget the amoCRM entities of these BILLmanager ids: the next sync takes the module's
    marker off them and the links of the module's companies and leads to an old contact
    (``sync/unmark.py``; people's work on them stays), makes new ones for what the rules want
    and links those. How many were linked."""
    from ..sync.relink import requeue_children

    chosen = kind_of(kind)
    wanted = [int(i) for i in ids]
    with using(app) as live, live.store.transaction():
        linked = sorted(live.store.links(chosen, wanted))
        # what the module linked to the old entities is linked to the new ones in the same pass
        requeue_children(live.billing, live.store, chosen, linked, "unlinked")
        unlinked = int(live.store.delete_links(chosen, linked))
        live.store.enqueue_many(chosen, linked, "resync")
    return unlinked
