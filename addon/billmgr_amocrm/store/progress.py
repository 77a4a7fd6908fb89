"""Where long jobs got to: the initial export's progress per kind, and named cursors.

Export progress (``amocrm_export_progress``): ``export_begin`` resumes an unfinished
export of a kind where it stopped (same start, same position) and restarts a finished
one from the beginning. Cursors (``amocrm_cursor``): small named bookmarks, such as
the reconciler's last run or the panel's export request.
"""

from __future__ import annotations

from ..domain import Kind
from ..foundation.clock import from_db
from ..ports import ExportProgress
from .queries import sql
from .unit_of_work import UnitOfWork, aware


class Progress(UnitOfWork):
    """The export progress' and cursors' part of ``MySqlStore``."""

    def export_begin(self, kind: Kind) -> ExportProgress:
        """Start (or resume, if unfinished) the initial export of a kind."""
        with self.transaction():
            self._exec(sql("export_begin"), (kind.value, self._now()))
            progress = self.export_progress(kind)
        assert progress is not None
        return progress

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        """Everything up to ``last_id`` is queued; ``enqueued`` more rows were added."""
        with self.transaction():
            self._exec(sql("export_advance"), (int(last_id), int(enqueued), kind.value))

    def export_finish(self, kind: Kind) -> None:
        with self.transaction():
            self._exec(sql("export_finish"), (self._now(), kind.value))

    def export_forget(self) -> None:
        """No export has reached the account the module now serves (it moved to another)."""
        with self.transaction():
            self._exec(sql("export_forget"))

    def export_progress(self, kind: Kind) -> ExportProgress | None:
        with self.transaction():
            found = self._rows(sql("export_progress"), (kind.value,))
        if not found:
            return None
        r = found[0]
        return ExportProgress(kind=Kind(r[0]), started_at=aware(r[1]), last_id=int(r[2]),
                              enqueued=int(r[3]), finished_at=from_db(r[4]))

    def get_cursor(self, name: str) -> str | None:
        with self.transaction():
            found = self._rows(sql("get_cursor"), (name,))
        return str(found[0][0]) if found else None

    def set_cursor(self, name: str, value: str) -> None:
        with self.transaction():
            self._exec(sql("set_cursor"), (name, value, self._now()))

    def tables_unchanged_for(self) -> float | None:
        """Seconds since a table of this database was last created or altered, by the server's
        clock (a restore from a dump creates every table anew); None when the server cannot say."""
        with self.transaction():
            found = self._rows(sql("tables_unchanged_for"))
        value = found[0][0] if found else None
        return None if value is None else float(value)
