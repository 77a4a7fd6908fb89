"""Payment notes (``amocrm_payment2note``) and renewal tasks (``amocrm_renewal_task``): the
exactly-once rows of issue 17, behind ``ports.activities.NoteStore`` and ``TaskStore``.

The unique keys do the work: a (payment, state, target) or (service, expiry date) gets one row
whichever path finds it first, an event or the reconciler, and INSERT IGNORE leaves an existing
row alone. Each row then goes pending -> intent (token committed before the request) -> done /
open; the jobs in ``sync/notes.py`` and ``sync/renewals.py`` drive it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional, Sequence

from ..domain import Kind
from ..foundation.clock import from_db, to_db
from ..ports.activities import LiveTask, PendingNote, PendingTask
from .queries import rows, sql
from .unit_of_work import UnitOfWork, aware, row_chunks


class ActivityRows(UnitOfWork):
    """The notes' and tasks' part of ``MySqlStore``."""

    # ------------------------------------------------------------------ payment notes
    def add_payment_notes(self, items: Sequence[tuple[int, str, str, int]]) -> int:
        added = 0
        with self.transaction():
            self._bind_shared(Kind.CONTACT, self._clock())
            for part in row_chunks(items):
                args = [v for row in part for v in (int(row[0]), str(row[1]), str(row[2]), int(row[3]))]
                added += self._exec(sql("add_payment_notes", rows=rows("add_payment_note_row", len(part))),
                                    args)
        return added

    def pending_payment_notes(self, limit: int) -> list[PendingNote]:
        with self.transaction():
            found = self._rows(sql("pending_payment_notes"), (int(limit),))
        return [PendingNote(id=int(r[0]), payment_id=int(r[1]), state=str(r[2]), target_kind=str(r[3]),
                            target_id=int(r[4]), entity_id=_opt_int(r[5]), token=r[6],
                            intent_at=from_db(r[7]), attempts=int(r[8]), linked_id=_opt_int(r[9]))
                for r in found]

    def has_pending_notes(self) -> bool:
        with self.transaction():
            return bool(self._rows(sql("has_pending_notes")))

    def payment_note_intent(self, row_id: int, entity_id: int, token: str) -> bool:
        with self.transaction():
            args = (token, int(entity_id), self._now(), int(row_id))
            return self._exec(sql("payment_note_intent"), args) == 1

    def payment_note_done(self, row_id: int, note_id: int, entity_id: int) -> None:
        with self.transaction():
            self._exec(sql("payment_note_done"), (int(note_id), int(entity_id), self._now(), int(row_id)))

    def payment_note_retry(self, row_id: int, error: str) -> None:
        with self.transaction():
            self._exec(sql("payment_note_retry"), (error[:4000], int(row_id)))

    def payment_note_failed(self, row_id: int, error: str) -> None:
        with self.transaction():
            self._exec(sql("payment_note_failed"), (error[:4000], int(row_id)))

    def payment_note_counts(self) -> dict[str, int]:
        with self.transaction():
            return {str(s): int(n) for s, n in self._rows(sql("payment_note_counts"))}

    def failed_payment_notes(self, limit: int = 100) -> list[tuple[int, str, str, int, int, str]]:
        with self.transaction():
            found = self._rows(sql("failed_payment_notes"), (int(limit),))
        return [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), str(r[5] or "")) for r in found]

    def retry_failed_payment_notes(self) -> int:
        with self.transaction():
            return self._exec(sql("retry_failed_payment_notes"))

    # ------------------------------------------------------------------ renewal tasks
    def add_renewal_tasks(self, items: Sequence[tuple[int, date, str, datetime]]) -> int:
        added = 0
        with self.transaction():
            self._bind_shared(Kind.LEAD, self._clock())
            for part in row_chunks(items):
                args = [v for row in part for v in (int(row[0]), row[1], str(row[2]), to_db(row[3]))]
                added += self._exec(sql("add_renewal_tasks", rows=rows("add_renewal_task_row", len(part))),
                                    args)
        return added

    def pending_renewal_tasks(self, limit: int) -> list[PendingTask]:
        with self.transaction():
            found = self._rows(sql("pending_renewal_tasks"), (int(limit),))
        return [PendingTask(id=int(r[0]), item_id=int(r[1]), expiredate=r[2], rule_id=str(r[3]),
                            lead_id=_opt_int(r[4]), token=r[5], intent_at=from_db(r[6]), due_at=aware(r[7]),
                            attempts=int(r[8]), linked_id=_opt_int(r[9])) for r in found]

    def live_renewal_tasks(self, after_id: int, limit: int) -> list[LiveTask]:
        with self.transaction():
            found = self._rows(sql("live_renewal_tasks"), (int(after_id), int(limit)))
        return [LiveTask(id=int(r[0]), item_id=int(r[1]), expiredate=r[2], status=str(r[3]),
                         task_id=_opt_int(r[4]), token=r[5]) for r in found]

    def renewal_task_intent(self, row_id: int, lead_id: int, token: str) -> bool:
        with self.transaction():
            args = (token, int(lead_id), self._now(), int(row_id))
            return self._exec(sql("renewal_task_intent"), args) == 1

    def renewal_task_open(self, row_id: int, task_id: int, lead_id: int) -> None:
        with self.transaction():
            self._exec(sql("renewal_task_open"), (int(task_id), int(lead_id), int(row_id)))

    def renewal_task_retry(self, row_id: int, error: str) -> None:
        with self.transaction():
            self._exec(sql("renewal_task_retry"), (error[:4000], int(row_id)))

    def renewal_task_failed(self, row_id: int, error: str) -> None:
        with self.transaction():
            self._exec(sql("renewal_task_failed"), (error[:4000], int(row_id)))

    def renewal_task_completed(self, row_id: int, why: str) -> None:
        with self.transaction():
            self._exec(sql("renewal_task_completed"), (self._now(), why[:4000], int(row_id)))

    def renewal_task_counts(self) -> dict[str, int]:
        with self.transaction():
            return {str(s): int(n) for s, n in self._rows(sql("renewal_task_counts"))}

    def failed_renewal_tasks(self, limit: int = 100) -> list[tuple[int, date, str, int, str]]:
        with self.transaction():
            found = self._rows(sql("failed_renewal_tasks"), (int(limit),))
        return [(int(r[0]), r[1], str(r[2]), int(r[3]), str(r[4] or "")) for r in found]

    def retry_failed_renewal_tasks(self) -> int:
        with self.transaction():
            return self._exec(sql("retry_failed_renewal_tasks"))


def _opt_int(value: Any) -> Optional[int]:
    return None if value is None else int(value)
