"""``MySqlStore``: the module's own tables behind ``ports.Store``, composed from one part per job.

    unit_of_work.py  the connection, transactions (BEGIN as the liveness check), cursor
                     helpers, session variables, the SKIP LOCKED probe
    queue.py         the queue: coalescing enqueue, keyset claim, complete, retry, fail,
                     dead letters and their revival, queue stats
    links.py         links, exactly-once create intents, sync state and fingerprints
    panel_view.py    the panel's read model: bindings list, link counts, last sync
    progress.py      the initial export's progress per kind, named cursors
    history.py       the last service event of each item (rules keyed on the event)
    stats.py         what the module did each day (the panel's report, the status view)
    notes.py         payment notes and renewal tasks: their exactly-once rows (issue 17)
    queries.sql      every statement, by name (loaded by queries.py)

Each part is a mixin over the same :class:`~.unit_of_work.UnitOfWork`, so they share one
connection and one transaction depth: a caller's ``transaction()`` spans all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .history import History
from .links import Links
from .notes import ActivityRows
from .panel_view import PanelView
from .progress import Progress
from .queue import Queue
from .stats import Stats
from .tags import GivenTags

if TYPE_CHECKING:
    from ..ports import Store
    from ..ports.activities import NoteStore, TaskStore


class MySqlStore(Queue, Links, Progress, History, Stats, PanelView, ActivityRows, GivenTags):
    """``ports.Store`` over PyMySQL; also the read side for the status screen and the panel.

    ``MySqlStore(conn, clock=utcnow)``: ``conn`` a PyMySQL connection (autocommit or not:
    every method runs in a transaction), ``clock`` stamps what a caller does not date."""


if TYPE_CHECKING:
    def _implements_the_port(store: MySqlStore) -> Store:
        """mypy checks here that MySqlStore still matches ports.Store."""
        return store

    def _implements_activities(store: MySqlStore) -> tuple[NoteStore, TaskStore]:
        return store, store
