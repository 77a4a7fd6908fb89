"""The panel's read model: what only the status screen and the bindings list read.

Not part of ``ports.Store``: the sync core never reads it. The bindings list joins the
links with the queue and the sync state in one statement (``bindings_matching`` in
``queries.sql``), filtered and paged in MySQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain import KIND_ORDER, Kind
from ..foundation.clock import from_db
from .queries import Fragment, fragment, joined, link_table, marks, sql
from .unit_of_work import UnitOfWork

BINDING_STATES = ("synced", "queued", "failed")
# order key -> column of the bindings derived table (fixed fragments, never built from input)
BINDING_ORDERS = {
    "kind": Fragment("b.kind_order"),
    "billmgr_id": Fragment("b.billmgr_id"),
    "amocrm_id": Fragment("b.amocrm_id"),
    "state": Fragment("b.state"),
    "last_sync_at": Fragment("b.last_sync_at"),
}
ASCENDING, DESCENDING = Fragment("ASC"), Fragment("DESC")


@dataclass(frozen=True)
class Binding:
    kind: Kind
    billmgr_id: int
    amocrm_id: int | None
    state: str                      # synced | queued | failed
    last_error: str
    last_sync_at: datetime | None
    notes: int = 0                  # payment notes made on it (contacts and leads)
    tasks: int = 0                  # renewal tasks made on it (leads)


@dataclass(frozen=True)
class BindingsPage:
    rows: list[Binding]
    total: int                      # rows matching the filters, for paging


def _like_text(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally anywhere (its wildcards escaped)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PanelView(UnitOfWork):
    """The read model's part of ``MySqlStore``."""

    def link_counts(self) -> dict[Kind, int]:
        """How many BILLmanager entities of each kind are linked to amoCRM."""
        with self.transaction():
            return {kind: int(self._rows(sql("link_count", link_table=link_table(kind)))[0][0])
                    for kind in KIND_ORDER}

    def last_sync_at(self, kind: Kind | None = None) -> datetime | None:
        """The newest successful sync (of a kind, or of any)."""
        with self.transaction():
            if kind is None:
                return from_db(self._rows(sql("last_sync_at"))[0][0])
            return from_db(self._rows(sql("last_sync_at_of_kind"), (kind.value,))[0][0])

    def bindings(self, kind: Kind | None = None, state: str | None = None,
                 search: str | None = None, order: str = "billmgr_id", descending: bool = False,
                 limit: int = 50, offset: int = 0) -> BindingsPage:
        """Entities that are linked or queued, with their state.

        ``state``: synced (linked, nothing queued) | queued (pending) | failed (dead letter).
        ``search``: digits match a BILLmanager or amoCRM id exactly; other text matches
        a piece of the last error.
        ``order``: one of ``BINDING_ORDERS``; ties broken by kind and id for stable pages.
        """
        if state is not None and state not in BINDING_STATES:
            raise ValueError(f"unknown binding state {state!r}; expected one of {', '.join(BINDING_STATES)}")
        if order not in BINDING_ORDERS:
            raise ValueError(f"unknown order {order!r}; expected one of {', '.join(BINDING_ORDERS)}")
        kinds = [kind] if kind is not None else list(KIND_ORDER)
        linked = joined((fragment("bindings_linked", link_table=link_table(k)) for k in kinds), " UNION ALL ")
        matching = fragment("bindings_matching", linked=linked, kinds=marks(len(kinds)))
        text = search.strip() if search else None
        an_id = int(text) if text is not None and text.isdigit() else None
        pattern = _like_text(text) if text is not None and an_id is None else None
        args = [*(k.value for k in kinds), *(k.value for k in kinds), state, state,
                an_id, an_id, an_id, pattern, pattern]
        page = sql("bindings_page", matching=matching, order=BINDING_ORDERS[order],
                   direction=DESCENDING if descending else ASCENDING)
        with self.transaction():
            total = int(self._rows(sql("bindings_count", matching=matching), args)[0][0])
            found = self._rows(page, (*args, int(limit), int(offset)))
            notes, tasks = self._activity_counts([(Kind(r[0]), int(r[1])) for r in found])
        return BindingsPage(
            rows=[Binding(kind=Kind(r[0]), billmgr_id=int(r[1]),
                          amocrm_id=None if r[2] is None else int(r[2]),
                          state=str(r[3]), last_error=str(r[4] or ""), last_sync_at=from_db(r[5]),
                          notes=notes.get((Kind(r[0]), int(r[1])), 0),
                          tasks=tasks.get(int(r[1]), 0) if Kind(r[0]) is Kind.LEAD else 0)
                  for r in found],
            total=total)

    def _activity_counts(self, keys: list[tuple[Kind, int]]
                         ) -> tuple[dict[tuple[Kind, int], int], dict[int, int]]:
        """Notes per (kind, id) and tasks per service, for one page of bindings (two small reads)."""
        notes: dict[tuple[Kind, int], int] = {}
        for kind in (Kind.CONTACT, Kind.LEAD):
            ids = [i for k, i in keys if k is kind]
            if ids:
                for target, n in self._rows(sql("notes_per_target", ids=marks(len(ids))), (kind.value, *ids)):
                    notes[(kind, int(target))] = int(n)
        leads = [i for k, i in keys if k is Kind.LEAD]
        tasks = {int(item): int(n) for item, n in
                 self._rows(sql("tasks_per_item", ids=marks(len(leads))), leads)} if leads else {}
        return notes, tasks
