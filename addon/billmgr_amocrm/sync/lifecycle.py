"""Lifecycle changes no event reported: item.status against the last service event recorded.

``service.postsuspend``, ``postresume`` and ``postclose`` may not run on every path (the
billing's own cron suspending for non-payment, a closure by expiry, an admin's manual
change: unverified.HOOKED_EVENTS). The item's status says where the service is now, and
the event history (``amocrm_service_event``) what amoCRM was last told, so the reconciler
compares them for every linked service and queues the event that is missing:

    status 3 (suspended), last event not suspend          -> suspend
    status 4 (deleted),   last event not close            -> close
    status 2 (active),    last event suspend or close     -> resume

Statuses 1 (ordered) and 5 (an operation in progress) say nothing yet. An active service
with no lifecycle event behind it (opened, prolonged, or never had an event) is where it
should be. The queued row carries the event, so the engine places the lead by the rules
keyed on it and records it as the item's last one: the next scan finds nothing to do. A
record that failed is left to "retry failed", and a service with no lead yet is the other
part of the reconciler's: its lead is created with the event its status gives it
(:func:`event_for_status`, applied by ``sync/events.py`` to every create), which is recorded.
"""

from __future__ import annotations

import logging
from typing import Optional

from ..domain import Kind, ServiceEvent
from ..ports import BillingReader, Store
from ..unverified import ITEM_STATUS_ACTIVE, ITEM_STATUS_DELETED, ITEM_STATUS_SUSPENDED

log = logging.getLogger(__name__)

SCAN_CHUNK = 1000
_ENDED = (ServiceEvent.SUSPEND, ServiceEvent.CLOSE)


def missing_event(status: int, last: Optional[ServiceEvent]) -> Optional[ServiceEvent]:
    """The lifecycle event amoCRM has not been told for a service in ``status``, if any."""
    if status == ITEM_STATUS_SUSPENDED and last is not ServiceEvent.SUSPEND:
        return ServiceEvent.SUSPEND
    if status == ITEM_STATUS_DELETED and last is not ServiceEvent.CLOSE:
        return ServiceEvent.CLOSE
    if status == ITEM_STATUS_ACTIVE and last in _ENDED:
        return ServiceEvent.RESUME
    return None


def event_for_status(status: int) -> Optional[ServiceEvent]:
    """The event a service found without a lead is queued with: its suspension or closure,
    so the lead is created where the rules put a suspended or closed service."""
    return missing_event(status, None)


def queue_lifecycle_changes(store: Store, billing: BillingReader, chunk: int = SCAN_CHUNK) -> int:
    """Queue the missing suspend / resume / close of every linked service; how many were queued."""
    failed = store.failed_ids(Kind.LEAD)
    found: dict[ServiceEvent, int] = {}
    for page in billing.item_statuses(chunk):
        ids = [item for item, status in page if status in (ITEM_STATUS_ACTIVE, ITEM_STATUS_SUSPENDED,
                                                           ITEM_STATUS_DELETED) and item not in failed]
        if not ids:
            continue
        linked = store.links(Kind.LEAD, ids)
        if not linked:
            continue
        last = store.service_events(list(linked))
        wanted: dict[ServiceEvent, list[int]] = {}
        for item, status in page:
            if item in linked and item not in failed:
                event = missing_event(status, last.get(item))
                if event is not None:
                    wanted.setdefault(event, []).append(item)
        for event, items in wanted.items():
            store.enqueue_many(Kind.LEAD, items, event.value)
            found[event] = found.get(event, 0) + len(items)
    if found:
        log.info("reconcile: service status changes no event reported: %s",
                 ", ".join(f"{n} {e.value}" for e, n in sorted(found.items(), key=lambda x: x[0].value)))
    return sum(found.values())
