"""Notes and tasks (issue 17): what the payment-note and renewal-task jobs ask of amoCRM
(``ActivityApi``, ``amocrm/activities.py``) and of the module's tables (``NoteStore``,
``TaskStore``, ``store/notes.py`` and ``store/renewals.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ContextManager, Mapping, Optional, Protocol, Sequence

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class PendingNote:
    """A note row not made yet. ``token``/``entity_id``/``intent_at``: its open intent (a POST may
    have been applied); ``linked_id``: the amoCRM id its target is linked to now (None: not yet)."""

    id: int
    payment_id: int
    state: str
    target_kind: str          # contact | lead
    target_id: int
    entity_id: Optional[int]
    token: Optional[str]
    intent_at: Optional[datetime]
    attempts: int
    linked_id: Optional[int]


@dataclass(frozen=True)
class PendingTask:
    """A renewal task row not made yet (fields as :class:`PendingNote`)."""

    id: int
    item_id: int
    expiredate: date
    rule_id: str
    lead_id: Optional[int]
    token: Optional[str]
    intent_at: Optional[datetime]
    due_at: datetime
    attempts: int
    linked_id: Optional[int]


@dataclass(frozen=True)
class LiveTask:
    """A renewal task row that is open in amoCRM or still to be made."""

    id: int
    item_id: int
    expiredate: date
    status: str               # open | pending
    task_id: Optional[int]
    token: Optional[str]


class ActivityApi(Protocol):
    def add_note(self, entity: str, entity_id: int, text: str) -> int:
        """POST one common note on a contact or lead; its id. ``AmbiguousWriteError`` when the
        answer was lost, ``FixData`` when amoCRM refused it (400: its words)."""

    def find_note(self, entity: str, entity_id: int, needle: str, since: int) -> Optional[int]:
        """The oldest note of the entity changed since ``since`` (unix time) whose text holds ``needle``."""

    def add_task(self, task: JsonDict) -> int:
        """POST one task; its id (errors as :meth:`add_note`)."""

    def find_task(self, lead_id: int, needle: str, since: int) -> Optional[int]:
        """The oldest task of the lead changed since ``since`` whose text holds ``needle``."""

    def complete_task(self, task_id: int, result: str) -> bool:
        """PATCH the task completed with ``result`` as its result text; False when it is gone
        (deleted in amoCRM). Completing twice is harmless, so a lost answer is simply sent again."""


class NoteStore(Protocol):
    def transaction(self) -> ContextManager[None]: ...

    def count_daily(self, counts: Mapping[str, int], now: datetime) -> None:
        """Adds to the day's counts (``Store.count_daily``): the panel's report and the status."""

    def add_payment_notes(self, items: Sequence[tuple[int, str, str, int]]) -> int:
        """(payment, state, target kind, target id) rows not there yet; how many were new."""

    def pending_payment_notes(self, limit: int) -> list[PendingNote]: ...

    def has_pending_notes(self) -> bool: ...

    def payment_note_intent(self, row_id: int, entity_id: int, token: str) -> bool:
        """Take the row's intent (committed); False when another process holds one (do not send)."""

    def payment_note_done(self, row_id: int, note_id: int, entity_id: int) -> None: ...

    def payment_note_retry(self, row_id: int, error: str) -> None: ...

    def payment_note_failed(self, row_id: int, error: str) -> None: ...

    def get_cursor(self, name: str) -> Optional[str]: ...

    def set_cursor(self, name: str, value: str) -> None: ...


class TaskStore(Protocol):
    def transaction(self) -> ContextManager[None]: ...

    def count_daily(self, counts: Mapping[str, int], now: datetime) -> None:
        """Adds to the day's counts (``Store.count_daily``): the panel's report and the status."""

    def add_renewal_tasks(self, items: Sequence[tuple[int, date, str, datetime]]) -> int:
        """(item, expiredate, rule id, due) rows not there yet; how many were new."""

    def pending_renewal_tasks(self, limit: int) -> list[PendingTask]: ...

    def live_renewal_tasks(self, after_id: int, limit: int) -> list[LiveTask]: ...

    def renewal_task_intent(self, row_id: int, lead_id: int, token: str) -> bool:
        """As :meth:`NoteStore.payment_note_intent`."""

    def renewal_task_open(self, row_id: int, task_id: int, lead_id: int) -> None: ...

    def renewal_task_retry(self, row_id: int, error: str) -> None: ...

    def renewal_task_failed(self, row_id: int, error: str) -> None: ...

    def renewal_task_completed(self, row_id: int, why: str) -> None: ...
