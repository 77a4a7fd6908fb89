"""Use cases that only look: the status screen and the bindings table (no network)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Optional

from ..domain import KIND_ORDER
from ..exportrequest import export_requested
from ..foundation.clock import local_day, utcnow
from ..sync.adopt import adoption_pending
from ..sync.match import matching_pending
from .account import token_status
from .app import kind_of, using
from .results import DAILY_METRICS, DayCounts, ExportKindProgress, Status

if TYPE_CHECKING:
    from ..bootstrap import App


def status(*, app: Optional[App] = None) -> Status:
    """Token state, queue depth and age, failures, last sync, links, export progress, and the rules
    against the last amoCRM catalog fetched (no network)."""
    from .catalog_health import cached_catalog_health

    with using(app) as live:
        tokens = token_status(app=live)
        stats = live.store.queue_stats()
        now = utcnow()
        export = []
        for kind in KIND_ORDER:
            progress = live.store.export_progress(kind)
            if progress is not None:
                export.append(ExportKindProgress(kind.value, progress.enqueued,
                                                 progress.finished_at is not None))
        return Status(
            token_state=tokens.state, token_reason=tokens.reason, subdomain=tokens.subdomain,
            access_expires_at=tokens.access_expires_at, refresh_expires_at=tokens.refresh_expires_at,
            queue_depth=stats.depth, queue_by_kind={k.value: n for k, n in stats.pending.items()},
            oldest_pending_age=stats.oldest_pending_age(now), failed=stats.failed_total,
            failed_by_kind={k.value: n for k, n in stats.failed.items()},
            last_sync_at=live.store.last_sync_at(),
            linked={k.value: n for k, n in live.store.link_counts().items()}, export=export,
            export_requested=export_requested(live.store), catalog=cached_catalog_health(app=live),
            payment_notes=live.store.payment_note_counts(), renewal_tasks=live.store.renewal_task_counts(),
            daily=daily(STATUS_DAYS, app=live), token_kind=tokens.kind,
            adopting=tuple(kind.amo_entity for kind in adoption_pending(live.store)),
            matching=matching_pending(live.store))


STATUS_DAYS = 7     # the status view's window; the panel's report shows REPORT_DAYS
REPORT_DAYS = 30


def daily(days: int = REPORT_DAYS, *, app: Optional[App] = None) -> tuple[DayCounts, ...]:
    """The last ``days`` local days, today included, oldest first, days without work as zeros."""
    with using(app) as live:
        today = local_day(utcnow())
        since = today - timedelta(days=days - 1)
        found = live.store.daily_counts(since)
        return tuple(DayCounts(day, {m: found.get(day, {}).get(m, 0) for m in DAILY_METRICS})
                     for day in (since + timedelta(days=i) for i in range(days)))


def bindings(kind: Any = None, state: Optional[str] = None, search: Optional[str] = None,
             order: str = "billmgr_id", descending: bool = False, limit: int = 50, offset: int = 0,
             *, app: Optional[App] = None) -> Any:
    """The bindings table (store.BindingsPage) with readable names."""
    chosen = kind_of(kind) if kind else None
    with using(app) as live:
        return live.store.bindings(chosen, state, search, order, descending, limit, offset)


def suggested_billmgr_url(*, app: Optional[App] = None) -> str:
    """BILLmanager's public address as the module can read it (unverified.PUBLIC_URL_SOURCE: the
    first project's billurl), normalized as the ``billmgr_url`` setting keeps it; '' when there
    is none or it is not a usable https address. The admin confirms it in the form."""
    from ..rules.config import billmgr_base_url

    with using(app) as live:
        found = live.billing.public_url()
    try:
        return billmgr_base_url(found)
    except ValueError:
        return ""
