"""Use cases for payment notes and renewal tasks (issue 17): counts for the status screen,
their failures, reviving them, and noting payments on demand (no network: the worker sends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

from .app import using

if TYPE_CHECKING:
    from ..bootstrap import App


@dataclass(frozen=True)
class ActivityStatus:
    notes: dict[str, int] = field(default_factory=dict)    # pending | done | failed -> rows
    tasks: dict[str, int] = field(default_factory=dict)    # pending | open | completed | failed -> rows


@dataclass(frozen=True)
class FailedActivity:
    what: str            # note | task
    about: str           # "payment 12 (paid) on contact 7" | "service 31 expiring 2026-12-20"
    attempts: int
    reason: str


def activity_status(*, app: Optional[App] = None) -> ActivityStatus:
    with using(app) as live:
        return ActivityStatus(notes=live.store.payment_note_counts(), tasks=live.store.renewal_task_counts())


def failed_activities(limit: int = 100, *, app: Optional[App] = None) -> list[FailedActivity]:
    with using(app) as live:
        rows = [FailedActivity("note", f"payment {p} ({state}) on {kind} {target}", attempts, reason)
                for p, state, kind, target, attempts, reason in live.store.failed_payment_notes(limit)]
        rows += [FailedActivity("task", f"service {item} expiring {day:%Y-%m-%d} (rule {rule})", attempts,
                                reason)
                 for item, day, rule, attempts, reason in live.store.failed_renewal_tasks(limit)]
        return rows


def retry_failed_activities(what: Optional[str] = None, *, app: Optional[App] = None) -> int:
    """Failed notes and/or tasks (``what``: note | task | None for both) become pending again."""
    with using(app) as live:
        revived = 0
        if what in (None, "note"):
            revived += live.store.retry_failed_payment_notes()
        if what in (None, "task"):
            revived += live.store.retry_failed_renewal_tasks()
        return revived


def note_payments(ids: Sequence[int], *, app: Optional[App] = None) -> int:
    """Note these payments as they are now (e.g. one from before the set-up); a state already noted
    on a target is not noted again. The new note rows; the worker sends them."""
    from ..sync.notes import queue_payments

    with using(app) as live:
        return queue_payments(live.store, live.billing, live.config.notes, [int(i) for i in ids])


@dataclass(frozen=True)
class RenewalRun:
    ran: bool                # False: another engine holds the lease (its worker runs them hourly)
    planned: int = 0
    created: int = 0
    completed: int = 0
    failed: int = 0
    holder: str = ""
    # why nothing was sent although the lease was free (a restore of the database not over yet)
    waiting: str = ""


def run_renewals_now(*, app: Optional[App] = None) -> RenewalRun:
    """The renewal task duty now (after a rule was added, say), under the engine lease like every
    sender; when another engine holds it, nothing is sent here (that worker runs it hourly)."""
    with using(app) as live:
        lease = live.lease()
        held_before = lease.held
        if not lease.acquire():
            holder = lease.holder()
            return RenewalRun(ran=False, holder=holder.describe() if holder is not None else "")
        try:
            return renewals_under_lease(live)
        finally:
            if not held_before:
                lease.release()


def renewals_under_lease(live: App) -> RenewalRun:
    """One renewal run, the engine lease held (``amocrm renewals`` and the worker's duty): nothing
    is sent while a restore of the database is not over, and what was made stamps the database
    (``sync/timeline.py``)."""
    from ..foundation.clock import utcnow
    from ..sync.renewals import run_renewals
    from ..sync.timeline import made_since

    timeline = live.timeline()
    held = timeline.begin()
    if held is not None:
        return RenewalRun(ran=True, waiting=held)
    now = utcnow()
    report = run_renewals(live.store, live.activities(), live.billing, live.config, live.presets,
                          now=now, settle_after=float(live.config.sync.settle_after),
                          made_since=made_since(live.store, now))
    if report.created or report.completed:
        timeline.end()
    return RenewalRun(True, report.planned, report.created, report.completed, report.failed)
