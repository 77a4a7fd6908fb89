"""Set-at-a-time writes to the module's tables, so a batch of 250 costs a few statements.

Profiling the export showed the time went to MySQL round trips, not to amoCRM: one
``put_link`` + ``record_synced`` + ``complete`` per entity is four statements, ~0.4 ms
each on a loaded host. :class:`BulkMySqlStore` adds the batch forms the sync core uses
when a store has them (``bulk_*`` helpers below fall back to the per-row port methods,
so the fakes and any other ``ports.Store`` keep working).

Each method has the exact semantics of its per-row twin in ``store.MySqlStore``; the
SQL is the same statement rewritten with only ``%s`` in ``VALUES`` so PyMySQL's
``executemany`` sends one multi-row INSERT. (Candidates to move into MySqlStore.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, List, Sequence, Tuple

from ..domain import Kind
from ..ports import QueueItem, Store
from ..store.store import MySqlStore, _db_time

CHUNK = 1000

# store.MySqlStore.enqueue's statement, every value bound (see its docstring for the rules).
_ENQUEUE = """INSERT INTO amocrm_queue
                (kind, billmgr_id, reason, version, state, attempts, next_attempt_at,
                 first_queued_at, updated_at, last_error)
              VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
              ON DUPLICATE KEY UPDATE
                reason = IF(FIELD(VALUES(reason), 'prolong', 'open') >= FIELD(reason, 'prolong', 'open'),
                            VALUES(reason), reason),
                attempts = IF(state = 'failed', 0, attempts),
                first_queued_at = IF(state = 'failed', VALUES(first_queued_at), first_queued_at),
                version = version + 1,
                next_attempt_at = VALUES(next_attempt_at),
                updated_at = VALUES(updated_at),
                state = 'pending'"""


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[List[Any]]:
    for start in range(0, len(values), size):
        yield list(values[start:start + size])


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


class BulkMySqlStore(MySqlStore):
    """MySqlStore plus the batch writes of the sync core (same transactions, same rules)."""

    def _many(self, sql: str, rows: Sequence[Tuple[Any, ...]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql, list(rows))

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        """``enqueue`` for many ids of one kind (coalescing exactly like it)."""
        now = self._now()
        with self.transaction():
            for part in _chunks(sorted({int(i) for i in billmgr_ids})):
                self._many(_ENQUEUE, [(kind.value, i, reason, 1, "pending", 0, now, now, now, None)
                                      for i in part])

    def put_links(self, kind: Kind, pairs: Sequence[Tuple[int, int]], clear_intents: bool = True) -> None:
        """``put_link`` for many (billmgr_id, amocrm_id): insert or replace, clear the intents.

        ``clear_intents=False`` is for a caller that clears them itself in the same
        transaction (``record_synced_many(..., created=True)``), one statement fewer."""
        with self.transaction():
            for part in _chunks(list(pairs)):
                self._many(f"INSERT INTO {kind.link_table} (billmgr_id, amocrm_id) VALUES (%s, %s) "  # noqa: S608
                           f"ON DUPLICATE KEY UPDATE amocrm_id = VALUES(amocrm_id)",
                           [(int(b), int(a)) for b, a in part])
                if clear_intents:
                    ids = [int(b) for b, _ in part]
                    self._exec(f"UPDATE amocrm_sync_state SET create_started_at = NULL "  # noqa: S608
                               f"WHERE kind = %s AND billmgr_id IN ({_marks(len(ids))})", (kind.value, *ids))

    def record_synced_many(self, kind: Kind, rows: Sequence[Tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        """``record_synced`` for many (billmgr_id, fingerprint); ``created`` also clears the intents."""
        stamp = _db_time(now)
        clear = ", create_started_at = NULL" if created else ""
        with self.transaction():
            for part in _chunks(list(rows)):
                self._many("INSERT INTO amocrm_sync_state (kind, billmgr_id, last_sync_at, fingerprint) "
                           "VALUES (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
                           "last_sync_at = VALUES(last_sync_at), fingerprint = VALUES(fingerprint)" + clear,
                           [(kind.value, int(b), stamp, f[:128]) for b, f in part])

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        """``complete`` for many: delete rows whose version is unchanged; reset the rest's attempts."""
        with self.transaction():
            for part in _chunks(list(items)):
                ids = [i.id for i in part]
                pairs = ", ".join(["(%s, %s)"] * len(part))
                args: List[object] = [*ids]
                for item in part:
                    args.extend((item.id, item.version))
                # "id IN" lets the primary key find the rows; the row-constructor test checks versions
                deleted = self._exec(f"DELETE FROM amocrm_queue WHERE id IN ({_marks(len(ids))}) "  # noqa: S608
                                     f"AND (id, version) IN ({pairs})", args)
                if deleted == len(set(ids)):
                    continue
                # whatever is left had a newer event: it starts with a clean slate (as complete())
                self._exec(f"UPDATE amocrm_queue SET attempts = 0, last_error = NULL, updated_at = %s "  # noqa: S608
                           f"WHERE id IN ({_marks(len(ids))})", (self._now(), *ids))


# --------------------------------------------------------------------------- helpers for any Store
def bulk_enqueue(store: Store, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
    many = getattr(store, "enqueue_many", None)
    if many is not None:
        many(kind, billmgr_ids, reason)
        return
    with store.transaction():
        for billmgr_id in billmgr_ids:
            store.enqueue(kind, billmgr_id, reason)


def bulk_link_created(store: Store, kind: Kind, created: Sequence[Tuple[int, int, str]],
                      now: datetime) -> None:
    """Links + sync state of entities just created: (billmgr_id, amocrm_id, fingerprint)."""
    put_links = getattr(store, "put_links", None)
    record_many = getattr(store, "record_synced_many", None)
    if put_links is not None and record_many is not None:
        put_links(kind, [(b, a) for b, a, _ in created], clear_intents=False)
        record_many(kind, [(b, f) for b, _, f in created], now, created=True)
        return
    for billmgr_id, amocrm_id, fingerprint in created:
        store.put_link(kind, billmgr_id, amocrm_id)
        store.record_synced(kind, billmgr_id, now, fingerprint)


def bulk_record_synced(store: Store, kind: Kind, rows: Sequence[Tuple[int, str]], now: datetime) -> None:
    many = getattr(store, "record_synced_many", None)
    if many is not None:
        many(kind, rows, now)
        return
    for billmgr_id, fingerprint in rows:
        store.record_synced(kind, billmgr_id, now, fingerprint)


def bulk_complete(store: Store, items: Sequence[QueueItem]) -> None:
    if not items:
        return
    many = getattr(store, "complete_many", None)
    if many is not None:
        many(items)
        return
    for item in items:
        store.complete(item)
