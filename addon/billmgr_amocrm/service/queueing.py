"""Use cases on the queue: a sync pass now, the reconciler, resync, the failed records, unlink."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from ..foundation.clock import utcnow
from .app import kind_of, using
from .results import FailedRow

if TYPE_CHECKING:
    from ..bootstrap import App
    from ..sync.outcomes import Report


def sync_now(*, app: Optional[App] = None) -> Report:
    """One worker pass in this process (spool -> queue -> amoCRM)."""
    from ..worker import sync_once

    with using(app) as live:
        return sync_once(live)


def reconcile(*, full: bool = False, app: Optional[App] = None) -> dict[str, int]:
    """The reconciler now (with its daily re-check of linked entities when due, or ``full``)."""
    from ..sync.reconcile import reconcile as run

    with using(app) as live:
        queued = run(live.store, live.billing, live.rules, utcnow(), live.stored_context(), full=full)
        return {k.value: n for k, n in queued.items()}


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


def unlink(kind: Any, ids: Sequence[int], *, app: Optional[App] = None) -> int:
    """Forget the amoCRM entities of these BILLmanager ids (the next sync creates new ones)."""
    chosen = kind_of(kind)
    with using(app) as live:
        return int(live.store.delete_links(chosen, [int(i) for i in ids]))
