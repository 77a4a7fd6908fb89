"""What the module did each day (``amocrm_daily_stats``), for the panel's 30-day report and
the status view: entities synced per kind, failures, and the notes and tasks it sent.

Counts are added where the work lands (a batch of the engine, a note, a task), one
statement per batch, so a killed process loses at most the counts of the batch it was in;
they are a trend for people to read, not a ledger (the link and queue tables are that).
A day is the host's local calendar day, as the admin reads the panel's dates.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Mapping

from ..foundation.clock import local_day
from .queries import sql
from .unit_of_work import UnitOfWork


class Stats(UnitOfWork):
    """The daily counts' part of ``MySqlStore``."""

    def count_daily(self, counts: Mapping[str, int], now: datetime) -> None:
        """Adds ``counts`` (metric -> how many, zeros left out) to the counts of ``now``'s day."""
        day = local_day(now)
        rows = [(day, metric, int(n)) for metric, n in sorted(counts.items()) if n > 0]
        if not rows:
            return
        with self.transaction():
            self._insert_rows("count_daily", "count_daily_row", [v for row in rows for v in row], 3)

    def daily_counts(self, since: date) -> dict[date, dict[str, int]]:
        """day -> metric -> count, for every day from ``since`` on that has a count."""
        found: dict[date, dict[str, int]] = {}
        with self.transaction():
            for day, metric, count in self._rows(sql("daily_counts"), (since,)):
                found.setdefault(day, {})[str(metric)] = int(count)
        return found
