"""The export request: how the panel and the first authorization ask the worker to export everything.

The asking side only records the request (the ``export:requested`` cursor) and returns at
once. The side that answers queues everything (``sync.export``: resumable, a kind at a
time) and only then clears the request, so a worker killed half way leaves it standing
and the next one resumes the export. The worker answers with :func:`run_requested_export`;
``amocrm export`` (``service.run_export``) queues on a thread of its own beside the sending
and calls :func:`answered` when its queueing is done.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Optional, Protocol

from .foundation.clock import utcnow

EXPORT_REQUEST = "export:requested"


class Cursors(Protocol):
    def get_cursor(self, name: str) -> Optional[str]: ...

    def set_cursor(self, name: str, value: str) -> None: ...


if TYPE_CHECKING:
    from .ports import BillingReader, Store
    from .sync.export import ExportCounts


def request_export(store: Cursors, now: Optional[datetime] = None) -> None:
    store.set_cursor(EXPORT_REQUEST, (now or utcnow()).isoformat())


def export_requested(store: Cursors) -> bool:
    return bool(store.get_cursor(EXPORT_REQUEST))


def answered(store: Cursors) -> None:
    """Everything is queued: the request is answered."""
    store.set_cursor(EXPORT_REQUEST, "")


def run_requested_export(store: Store, billing: BillingReader) -> Optional[ExportCounts]:
    """Queue everything if an export was requested, then answer it; None when none was."""
    if not export_requested(store):
        return None
    from .sync.export import enqueue_all

    counts = enqueue_all(store, billing)
    answered(store)
    return counts
