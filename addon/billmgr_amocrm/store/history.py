"""The service event history (``amocrm_service_event``): the last event of each item, and when.

A queue row carries the event that made it (``open``, ``prolong``) only until it is synced;
a recheck, a resync or an export of the same service later has no event of its own. The
engine records the event here when it syncs the event's row, and plans every later sync
of the item with it, so rules keyed on the event (conditions, tags, fields) give the same
answer. Events the module does not know (a newer version wrote them) read as none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from ..domain import Kind, ServiceEvent
from .queries import marks, sql
from .unit_of_work import UnitOfWork, chunks, row_chunks

_EVENTS = {event.value: event for event in ServiceEvent}


class History(UnitOfWork):
    """The service event history's part of ``MySqlStore``."""

    def record_service_events(self, events: Sequence[tuple[int, ServiceEvent]], now: datetime) -> None:
        """(item id, event): the item's last event is this one, synced at ``now``."""
        if not events:
            return
        with self.transaction():
            self._bind_shared(Kind.LEAD, now)
            for part in row_chunks(events):
                self._insert_rows("record_service_events", "record_service_event_row",
                                  [value for item, event in part for value in (int(item), event.value)], 2)

    def service_events(self, billmgr_ids: Sequence[int]) -> dict[int, ServiceEvent]:
        """item id -> its last service event, for the items that had one."""
        found: dict[int, ServiceEvent] = {}
        with self.transaction():
            for chunk in chunks(billmgr_ids):
                for item, value in self._rows(sql("service_events", ids=marks(len(chunk))), chunk):
                    event = _EVENTS.get(str(value))
                    if event is not None:
                        found[int(item)] = event
        return found
