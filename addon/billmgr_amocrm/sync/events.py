"""Which service event a lead is planned with, and which events become its history (pure).

A row's own event (its queue reason: open, prolong, suspend, resume, close) comes first; else
the item's last recorded event (``amocrm_service_event``), so a recheck or a resync gives rules
keyed on the event the answer the event gave; else, for a suspended or deleted service, the
event its status implies (:func:`.lifecycle.event_for_status`): an export creates the lead of a
service suspended long ago where a suspension puts it, and records that event, so the
reconciler has nothing left to tell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from ..domain import Kind, ServiceEvent
from .lifecycle import event_for_status

if TYPE_CHECKING:
    from .planner import Inputs, Work

# A dict, not ServiceEvent(reason): most reasons (export, edit, recheck) are not service
# events, and Enum's failed lookup raises and catches an exception for each entity.
_SERVICE_EVENTS: dict[str, ServiceEvent] = {event.value: event for event in ServiceEvent}


def service_event(reason: str) -> Optional[ServiceEvent]:
    return _SERVICE_EVENTS.get(reason)


def _by_status(work: Work, inputs: Inputs) -> Optional[ServiceEvent]:
    status = getattr(inputs.snapshots.get(work.billmgr_id), "status", None)
    return event_for_status(status) if isinstance(status, int) else None


def event_of(kind: Kind, work: Work, inputs: Inputs) -> Optional[ServiceEvent]:
    """The service event a lead is planned with: its row's own (a new event), else the item's
    last recorded one, else the one its status implies (suspended, deleted)."""
    if kind is not Kind.LEAD:
        return None
    return (service_event(work.reason) or inputs.events.get(work.billmgr_id)
            or _by_status(work, inputs))


def implied_event(kind: Kind, work: Work, inputs: Inputs) -> Optional[ServiceEvent]:
    """The event a lead is created with that no row or history gave: its status's."""
    if kind is not Kind.LEAD or service_event(work.reason) or work.billmgr_id in inputs.events:
        return None
    return _by_status(work, inputs)


def new_events(kind: Kind, works: Sequence[Work]) -> list[tuple[int, ServiceEvent]]:
    """(item id, event) for the rows that carry a service event: the history to record."""
    if kind is not Kind.LEAD:
        return []
    found = [(w.billmgr_id, service_event(w.reason)) for w in works]
    return [(item, event) for item, event in found if event is not None]
