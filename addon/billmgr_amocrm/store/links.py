"""Links (the spec's three link tables) with create intents and sync state (``amocrm_sync_state``).

Exactly-once creates: ``begin_create`` records (and, in its own unit of work, commits)
an intent before the POST; a link ends it (``put_links``, or
``record_synced_many(created=True)`` in the same transaction); ``clear_create`` ends
it when nothing was created. An intent without a link after a crash or a lost answer
means "may exist in amoCRM": ``open_creates`` lists them for the marker search.

Sync state: when an entity was last synced and a fingerprint of what was sent, so the
worker can skip an update that would change nothing. Only a synced row has a
fingerprint; an intent alone does not make one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterator, Mapping, Sequence

import pymysql

from ..domain import Kind
from .queries import NOTHING, fragment, link_table, marks, sql
from .unit_of_work import UnitOfWork, aware, chunks, row_chunks

FINGERPRINT_MAX_CHARS = 128
DUPLICATE_ENTRY = 1062      # MySQL's ER_DUP_ENTRY


def link_conflicts(pairs: Sequence[tuple[int, int]], holders: Mapping[int, int]) -> dict[int, int]:
    """The pairs that may not be written: billmgr_id -> the BILLmanager id that holds (or, earlier
    in ``pairs``, claims) its amoCRM id. ``holders``: amocrm_id -> billmgr_id as stored.

    One amoCRM entity is linked to one BILLmanager entity: an amoCRM id is free only once
    its link is dropped (a move within the same call does not free it)."""
    owner = dict(holders)
    conflicts: dict[int, int] = {}
    for billmgr_id, amocrm_id in pairs:
        holder = owner.setdefault(amocrm_id, billmgr_id)
        if holder != billmgr_id:
            conflicts[billmgr_id] = holder
    return conflicts


class Links(UnitOfWork):
    """The links' and sync state's part of ``MySqlStore``."""

    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]:
        """billmgr_id -> amoCRM id, for the ids that are linked."""
        found: dict[int, int] = {}
        with self.transaction():
            for chunk in chunks(billmgr_ids):
                statement = sql("links", link_table=link_table(kind), ids=marks(len(chunk)))
                found.update({int(b): int(a) for b, a in self._rows(statement, chunk)})
        return found

    def bound_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """Every linked BILLmanager id of a kind, ascending, a page at a time (each its own short
        query: nothing stays open between pages)."""
        statement = sql("bound_page", link_table=link_table(kind))
        last = max(0, int(after_id))
        while True:
            with self.transaction():
                page = [int(r[0]) for r in self._rows(statement, (last, batch))]
            if page:
                yield page
            if len(page) < batch:
                return
            last = page[-1]

    def put_links(self, kind: Kind, pairs: Sequence[tuple[int, int]],
                  clear_intents: bool = True) -> dict[int, int]:
        """Insert or replace the links (billmgr_id, amocrm_id) and end their create intents.

        A pair whose amoCRM id another BILLmanager id holds is not written (amocrm_id is
        unique): returned as billmgr_id -> the holder, for the caller to fail that record.
        ``clear_intents=False`` is for a caller that ends them itself in the same
        transaction (``record_synced_many(..., created=True)``), one statement fewer."""
        if not pairs:
            return {}
        statement = sql("put_link", link_table=link_table(kind))
        conflicts: dict[int, int] = {}
        with self.transaction():
            for part in row_chunks([(int(b), int(a)) for b, a in pairs]):
                free = self._free_pairs(kind, part, conflicts)
                try:
                    self._many(statement, free)
                except pymysql.err.IntegrityError as exc:
                    if exc.args[0] != DUPLICATE_ENTRY:
                        raise
                    # another process linked one of these ids since the check (the failed
                    # statement wrote nothing): check again
                    free = self._free_pairs(kind, free, conflicts)
                    self._many(statement, free)
                if clear_intents and free:
                    self._clear_creates(kind, [b for b, _ in free])
        return conflicts

    def _free_pairs(self, kind: Kind, part: list[tuple[int, int]],
                    conflicts: dict[int, int]) -> list[tuple[int, int]]:
        taken = link_conflicts(part, self.linked_to(kind, [a for _, a in part]))
        conflicts.update(taken)
        return [(b, a) for b, a in part if b not in taken]

    def linked_to(self, kind: Kind, amocrm_ids: Sequence[int]) -> dict[int, int]:
        """amocrm_id -> the BILLmanager id linked to it, for the ids that are linked."""
        found: dict[int, int] = {}
        with self.transaction():
            for chunk in chunks(amocrm_ids):
                statement = sql("links_to", link_table=link_table(kind), ids=marks(len(chunk)))
                found.update({int(a): int(b) for a, b in self._rows(statement, chunk)})
        return found

    def drop_link(self, kind: Kind, billmgr_id: int) -> None:
        """Forget a link (its entity is gone from amoCRM); the sync state stays."""
        with self.transaction():
            self._exec(sql("delete_links", link_table=link_table(kind), ids=marks(1)), (int(billmgr_id),))

    def delete_links(self, kind: Kind, ids: Sequence[int]) -> int:
        """Unbind: forget the links and sync state of these entities (amoCRM keeps its records,
        and the next pass takes the module's marker off them: ``unmarks``); how many links there
        were."""
        total = 0
        table = link_table(kind)
        with self.transaction():
            now = self._now()
            for chunk in chunks(ids):
                some = marks(len(chunk))
                self._exec(sql("note_unmarks", link_table=table, ids=some), (kind.value, now, *chunk))
                total += self._exec(sql("delete_links", link_table=table, ids=some), chunk)
                self._exec(sql("delete_sync_state", ids=some), (kind.value, *chunk))
        return total

    def unmarks(self, kind: Kind, limit: int) -> list[tuple[int, int]]:
        """(amoCRM id, the BILLmanager id its marker named) of unlinked entities whose marker is
        to be taken off, oldest first."""
        with self.transaction():
            return [(int(a), int(b)) for a, b in self._rows(sql("unmarks"), (kind.value, int(limit)))]

    def unmarks_pending(self) -> bool:
        with self.transaction():
            return bool(self._rows(sql("any_unmark")))

    def forget_unmarks(self, kind: Kind, amocrm_ids: Sequence[int]) -> None:
        with self.transaction():
            for chunk in chunks(amocrm_ids):
                self._exec(sql("forget_unmarks", ids=marks(len(chunk))), (kind.value, *chunk))

    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime, token: str = "") -> None:
        """Record the intents (with the create request's ``token``); an earlier open intent keeps
        its (earlier) time and token so a marker search from it covers every attempt."""
        if not billmgr_ids:
            return
        with self.transaction():
            self._bind_shared(kind, now, reason=token)
            for chunk in chunks(billmgr_ids):
                self._insert_rows("begin_create", "begin_create_row", chunk, 1)

    def open_creates(self, kind: Kind, billmgr_ids: Sequence[int] | None = None) -> dict[int, datetime]:
        """billmgr_id -> when its create was attempted, for intents with no link yet."""
        table = link_table(kind)
        batches: list[tuple[str, list[object]]]
        if billmgr_ids is None:
            batches = [(sql("open_creates", link_table=table, only_ids=NOTHING), [kind.value])]
        else:
            batches = [(sql("open_creates", link_table=table,
                            only_ids=fragment("and_intent_in", ids=marks(len(chunk)))), [kind.value, *chunk])
                       for chunk in chunks(billmgr_ids)]
        found: dict[int, datetime] = {}
        with self.transaction():
            for statement, args in batches:
                for billmgr_id, started in self._rows(statement, args):
                    found[int(billmgr_id)] = aware(started)
        return found

    def intent_tokens(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """billmgr_id -> the token of its open create intent (intents with a token only)."""
        found: dict[int, str] = {}
        with self.transaction():
            for chunk in chunks(billmgr_ids):
                rows = self._rows(sql("intent_tokens", ids=marks(len(chunk))), (kind.value, *chunk))
                found.update({int(b): str(t) for b, t in rows})
        return found

    def clear_create(self, kind: Kind, billmgr_id: int) -> None:
        """End a create intent: nothing was created (refused, or settled another way)."""
        with self.transaction():
            self._clear_creates(kind, [int(billmgr_id)])

    def _clear_creates(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        for chunk in chunks(billmgr_ids):
            self._exec(sql("clear_creates", ids=marks(len(chunk))), (kind.value, *chunk))

    def record_synced_many(self, kind: Kind, rows: Sequence[tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        """Last successful sync time and fingerprint of what was sent, for (billmgr_id, fingerprint)
        rows; ``created``: the entities were just created and linked, so their intents end too."""
        if not rows:
            return
        with self.transaction():
            self._bind_shared(kind, now, created=created)
            for part in row_chunks(rows):
                args: list[object] = []
                for billmgr_id, fingerprint in part:
                    args.extend((int(billmgr_id), fingerprint[:FINGERPRINT_MAX_CHARS]))
                self._insert_rows("record_synced", "record_synced_row", args, 2)

    def link_created(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime) -> dict[int, int]:
        """Entities just created: (billmgr_id, amocrm_id, fingerprint) -> links, sync state, intents
        ended; the conflicts of :meth:`put_links` are returned and not recorded."""
        if not rows:
            return {}
        with self.transaction():
            # record_synced_many(created=True) ends the intents: put_links need not do it too
            conflicts = self.put_links(kind, [(b, a) for b, a, _ in rows], clear_intents=False)
            self.record_synced_many(kind, [(b, f) for b, _, f in rows if int(b) not in conflicts], now,
                                    created=True)
        return conflicts

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """What was last sent (synced entities only), so the worker can skip an update that would
        change nothing."""
        found: dict[int, str] = {}
        with self.transaction():
            for chunk in chunks(billmgr_ids):
                synced = self._rows(sql("fingerprints", ids=marks(len(chunk))), (kind.value, *chunk))
                found.update({int(b): str(f) for b, f in synced})
        return found
