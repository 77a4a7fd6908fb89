"""``MySqlStore``: the module's own tables (queue, links, sync state) behind ``ports.Store``.

Times: every column is UTC in ``DATETIME(6)``. Aware datetimes passed in are
converted to UTC, naive ones are taken as UTC; datetimes returned are aware UTC
(:mod:`..foundation.clock`), like every datetime inside the module.
The store's clock (injectable for tests) stamps what the caller does not date.

Units of work: each public method runs in ``transaction()``; outside an explicit
one it commits by itself. The outermost ``transaction()`` reconnects when its BEGIN finds
the server gone, so a worker survives a MariaDB restart between units.

Queue rules (see ``enqueue``):
  * one row per (kind, billmgr_id); a new event bumps ``version``, makes it due now,
    keeps ``first_queued_at`` (its age) and ``attempts`` (the backoff history);
  * a failed (dead-letter) row is revived as pending with a fresh age and attempts 0
    (the same as ``retry_failed``), so the status screen's "oldest pending" is not
    an alarm about an old, already reported failure;
  * reason precedence: ``open`` > ``prolong`` > the rest, failed rows included. The
    service events say what happened to a service (the worker maps them to a pipeline
    stage), so a later ``edit``/``reconcile``/``export`` must not erase them; ``open``
    stays ``open`` until the row is done (the worker reads fresh data when it runs, so
    a prolong folded into it loses nothing). Among the other reasons the newest wins.

Concurrency: exactly one worker drains the queue (it holds ``var/amocrm/amocrm_task.lock``),
so ``claim`` needs no lease. ``claim`` adds ``FOR UPDATE SKIP LOCKED`` (MariaDB >= 10.6,
MySQL >= 8) when called inside an explicit ``transaction()``, so a caller that holds
the transaction gets rows no other transaction has; outside one the locks would end
with the claim's own commit anyway, so it is a plain ordered SELECT.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import pymysql.cursors

from ..domain import KIND_ORDER, Kind
from ..foundation.clock import from_db, seconds_between, to_db, utcnow
from ..ports import QueueItem

if TYPE_CHECKING:
    from ..ports import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ERROR_MAX_CHARS = 4000
ID_CHUNK = 1000
BINDING_STATES = ("synced", "queued", "failed")
# order key -> SQL expression over the bindings derived table (never built from input)
BINDING_ORDERS = {
    "kind": "b.kind_order",
    "billmgr_id": "b.billmgr_id",
    "amocrm_id": "b.amocrm_id",
    "state": "b.state",
    "last_sync_at": "b.last_sync_at",
}


def _aware(value: datetime) -> datetime:
    """A NOT NULL DATETIME column as an aware UTC datetime."""
    aware = from_db(value)
    assert aware is not None
    return aware


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), ID_CHUNK):
        yield unique[start:start + ID_CHUNK]


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _row_chunks(rows: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(rows), ID_CHUNK):
        yield list(rows[start:start + ID_CHUNK])


# Every statement below exists once; the per-row port methods are the batch ones with one row,
# and a chunk of rows is ONE multi-row statement (PyMySQL's executemany when VALUES holds only %s).
# Values shared by every row of a statement (kind, reason, time) are bound ONCE into session
# variables (``_bind_shared``) and rows bind only their own: PyMySQL escapes every value in
# Python, and a datetime costs more to escape than a row costs MySQL to insert.
# enqueue: its assignments run left to right and later ones see earlier results, so the
# columns that read the old state come first (reason, attempts, age) and state last.
_ENQUEUE_ROW = ("(@amocrm_kind, %s, @amocrm_reason, 1, 'pending', 0, "
                "@amocrm_now, @amocrm_now, @amocrm_now, NULL)")
_ENQUEUE_SQL = """INSERT INTO amocrm_queue
    (kind, billmgr_id, reason, version, state, attempts, next_attempt_at,
     first_queued_at, updated_at, last_error)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE
    reason = IF(FIELD(VALUES(reason), 'prolong', 'open') >= FIELD(reason, 'prolong', 'open'),
                VALUES(reason), reason),
    attempts = IF(state = 'failed', 0, attempts),
    first_queued_at = IF(state = 'failed', VALUES(first_queued_at), first_queued_at),
    version = version + 1,
    next_attempt_at = VALUES(next_attempt_at),
    updated_at = VALUES(updated_at),
    state = 'pending'"""
_PUT_LINK_SQL = ("INSERT INTO {table} (billmgr_id, amocrm_id) VALUES (%s, %s) "
                 "ON DUPLICATE KEY UPDATE amocrm_id = VALUES(amocrm_id)")
_CLEAR_CREATES_SQL = ("UPDATE amocrm_sync_state SET create_started_at = NULL "
                      "WHERE kind = %s AND billmgr_id IN ({marks})")
_RECORD_SYNCED_ROW = "(@amocrm_kind, %s, @amocrm_now, %s)"
_RECORD_SYNCED_SQL = ("INSERT INTO amocrm_sync_state (kind, billmgr_id, last_sync_at, fingerprint) "
                      "VALUES {rows} ON DUPLICATE KEY UPDATE "
                      "last_sync_at = VALUES(last_sync_at), fingerprint = VALUES(fingerprint){clear}")
_BEGIN_CREATE_ROW = "(@amocrm_kind, %s, @amocrm_now)"
_BEGIN_CREATE_SQL = ("INSERT INTO amocrm_sync_state (kind, billmgr_id, create_started_at) VALUES {rows} "
                     "ON DUPLICATE KEY UPDATE "
                     "create_started_at = COALESCE(create_started_at, VALUES(create_started_at))")


@dataclass(frozen=True)
class QueueStats:
    pending: dict[Kind, int]              # due or not, per kind
    failed: dict[Kind, int]
    oldest_pending_at: datetime | None

    @property
    def depth(self) -> int:
        return sum(self.pending.values())

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def oldest_pending_age(self, now: datetime) -> float | None:
        """Seconds the oldest pending row has waited, None when the queue is empty."""
        if self.oldest_pending_at is None:
            return None
        return max(0.0, seconds_between(self.oldest_pending_at, now))


@dataclass(frozen=True)
class FailedItem:
    id: int
    kind: Kind
    billmgr_id: int
    reason: str
    attempts: int
    last_error: str
    first_queued_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Binding:
    kind: Kind
    billmgr_id: int
    amocrm_id: int | None
    state: str                      # synced | queued | failed
    last_error: str
    last_sync_at: datetime | None


@dataclass(frozen=True)
class BindingsPage:
    rows: list[Binding]
    total: int                      # rows matching the filters, for paging


@dataclass(frozen=True)
class ExportProgress:
    kind: Kind
    started_at: datetime
    last_id: int
    enqueued: int
    finished_at: datetime | None


class MySqlStore:
    """``ports.Store`` over PyMySQL; also the read side for the status screen and the panel."""

    def __init__(self, conn: Any, clock: Clock = utcnow) -> None:
        self._conn = conn
        self._clock = clock
        self._depth = 0
        self._skip_locked: bool | None = None

    # ------------------------------------------------------------------ units of work
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._rollback_quietly()
            raise
        else:
            self._conn.commit()
        finally:
            self._depth = 0

    def _begin(self) -> None:
        """BEGIN, reconnecting once if the server went away (restart, wait_timeout, KILL) since
        the last unit.

        BEGIN itself is the liveness check: it changes nothing, so when it fails on a dead
        connection it is safe to reconnect and send it again. A separate ping before it
        cost one more round trip per unit of work (about 700 in a 27,000-entity export).
        Inside a transaction nothing is retried: the caller's unit of work failed.
        """
        try:
            self._conn.begin()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
            log.info("MySQL connection lost (%s); reconnecting", type(exc).__name__)
            with suppress(pymysql.err.Error):
                self._conn.close()      # frees the dead socket; "already closed" is fine
            self._conn.connect()
            self._conn.begin()

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except Exception:  # noqa: BLE001 - the original error matters, a dead link cannot roll back
            log.debug("rollback failed (connection lost?)", exc_info=True)

    def _now(self) -> datetime:
        return to_db(self._clock())

    def _cursor(self) -> Any:
        # Tuple rows whatever cursor class the connection was opened with.
        return self._conn.cursor(pymysql.cursors.Cursor)

    def _exec(self, sql: str, args: Sequence[object] = ()) -> int:
        with self._cursor() as cur:
            return int(cur.execute(sql, tuple(args)))

    def _rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(sql, tuple(args))
            return list(cur.fetchall())

    def _bind_shared(self, kind: Kind, now: datetime, reason: str = "") -> None:
        """The session variables the row templates above read (inside the caller's transaction)."""
        self._exec("SET @amocrm_kind = %s, @amocrm_now = %s, @amocrm_reason = %s",
                   (kind.value, to_db(now), reason))

    def _insert_rows(self, sql: str, row: str, args: Sequence[object], per_row: int) -> None:
        """One multi-row statement: ``sql`` with ``{rows}`` = ``row`` once per ``per_row`` args."""
        self._exec(sql.format(rows=", ".join([row] * (len(args) // per_row))), args)

    def _many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with self._cursor() as cur:
            cur.executemany(sql, [tuple(r) for r in rows])

    @property
    def supports_skip_locked(self) -> bool:
        """MariaDB >= 10.6 or MySQL >= 8.0 understand ``SKIP LOCKED``."""
        if self._skip_locked is None:
            with self.transaction():
                version = str(self._rows("SELECT VERSION()")[0][0])
            match = re.match(r"(\d+)\.(\d+)", version)
            major, minor = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
            if "mariadb" in version.lower():
                self._skip_locked = (major, minor) >= (10, 6)
            else:
                self._skip_locked = major >= 8
        return self._skip_locked

    # ------------------------------------------------------------------ queue
    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        """Coalesce into the (kind, billmgr_id) row: see the module docstring for the rules."""
        self.enqueue_many(kind, [billmgr_id], reason)

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        """``enqueue`` for many ids of one kind (coalescing exactly like it), a statement per chunk."""
        with self.transaction():
            self._bind_shared(kind, self._now(), reason)
            for part in _chunks(billmgr_ids):
                self._insert_rows(_ENQUEUE_SQL, _ENQUEUE_ROW, part, 1)

    def claim(self, kind: Kind, limit: int, now: datetime) -> list[QueueItem]:
        """Pending rows of a kind that are due, oldest first."""
        return self.claim_after(kind, limit, now, None)

    def claim_after(self, kind: Kind, limit: int, now: datetime, after: QueueItem | None) -> list[QueueItem]:
        """``claim``, continuing past ``after`` in the same (first_queued_at, id) order.

        A drain claims batch after batch while the one in flight is still pending: the keyset
        skips it (and everything before it) in the index instead of reading it again."""
        where = "state = 'pending' AND kind = %s AND next_attempt_at <= %s"
        args: list[object] = [kind.value, to_db(now)]
        if after is not None:
            where += " AND (first_queued_at > %s OR (first_queued_at = %s AND id > %s))"
            args.extend((to_db(after.first_queued_at), to_db(after.first_queued_at), int(after.id)))
        sql = (f"SELECT id, billmgr_id, reason, version, attempts, first_queued_at "  # noqa: S608
               f"FROM amocrm_queue WHERE {where} ORDER BY first_queued_at, id LIMIT %s")
        if self._depth and self.supports_skip_locked:
            sql += " FOR UPDATE SKIP LOCKED"
        with self.transaction():
            rows = self._rows(sql, (*args, int(limit)))
        # The kind is the one asked for (WHERE kind = ...): not read back per row.
        return [QueueItem(id=int(r[0]), kind=kind, billmgr_id=int(r[1]), reason=str(r[2]),
                          version=int(r[3]), attempts=int(r[4]), first_queued_at=_aware(r[5]))
                for r in rows]

    def complete(self, item: QueueItem) -> None:
        """Delete the row if its version is unchanged; otherwise leave it pending (a newer event came)."""
        self.complete_many([item])

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        """``complete`` for many rows: two statements per chunk at most."""
        with self.transaction():
            for part in _row_chunks(items):
                ids = [i.id for i in part]
                by_version: dict[int, list[int]] = {}
                for item in part:
                    by_version.setdefault(int(item.version), []).append(int(item.id))
                # One "version = v AND id IN (...)" per version, not a (id, version) pair per row:
                # a batch mostly shares one version, so each row costs one bound value, and the
                # range optimizer still finds the rows by primary key (EXPLAIN: range on PRIMARY).
                clauses = " OR ".join(f"(version = %s AND id IN ({_placeholders(group)}))"
                                      for group in by_version.values())
                args: list[object] = [value for version, group in by_version.items()
                                      for value in (version, *group)]
                deleted = self._exec(f"DELETE FROM amocrm_queue WHERE {clauses}", args)  # noqa: S608
                if deleted == len(set(ids)):
                    continue
                # The rows left had a newer event; it starts with a clean slate: this sync succeeded.
                self._exec(f"UPDATE amocrm_queue SET attempts = 0, last_error = NULL, updated_at = %s "  # noqa: S608
                           f"WHERE id IN ({_placeholders(ids)})", (self._now(), *ids))

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None:
        """Count the attempt, keep the error, and make the row due after the delay."""
        now = self._now()
        due = now + timedelta(seconds=max(0.0, float(delay_seconds)))
        with self.transaction():
            self._exec("""UPDATE amocrm_queue
                          SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s, updated_at = %s
                          WHERE id = %s AND state = 'pending'""",
                       (due, error[:ERROR_MAX_CHARS], now, item.id))

    def fail(self, item: QueueItem, reason: str) -> None:
        """Dead-letter: state failed with the reason; stays visible until retried.

        If a newer event came while the item was processed (version moved) the row stays
        pending with the error noted: the new data may well be what fixes it.
        """
        with self.transaction():
            self._exec("""UPDATE amocrm_queue
                          SET attempts = attempts + 1, last_error = %s, updated_at = %s,
                              state = IF(version = %s, 'failed', 'pending')
                          WHERE id = %s""",
                       (reason[:ERROR_MAX_CHARS], self._now(), item.version, item.id))

    def queue_stats(self) -> QueueStats:
        with self.transaction():
            rows = self._rows("SELECT kind, state, COUNT(*) FROM amocrm_queue GROUP BY kind, state")
            oldest = self._rows("SELECT MIN(first_queued_at) FROM amocrm_queue WHERE state = 'pending'")
        pending = {kind: 0 for kind in KIND_ORDER}
        failed = {kind: 0 for kind in KIND_ORDER}
        for kind_value, state, count in rows:
            try:
                kind = Kind(kind_value)
            except ValueError:
                continue
            (pending if state == "pending" else failed)[kind] = int(count)
        return QueueStats(pending=pending, failed=failed, oldest_pending_at=from_db(oldest[0][0]))

    def failed(self, kind: Kind | None = None, limit: int = 50, offset: int = 0) -> list[FailedItem]:
        """Dead-letter rows, most recently failed first."""
        where = "state = 'failed'"
        args: list[object] = []
        if kind is not None:
            where += " AND kind = %s"
            args.append(kind.value)
        sql = (f"SELECT id, kind, billmgr_id, reason, attempts, last_error, first_queued_at, updated_at "  # noqa: S608
               f"FROM amocrm_queue WHERE {where} ORDER BY updated_at DESC, id DESC LIMIT %s OFFSET %s")
        with self.transaction():
            rows = self._rows(sql, (*args, int(limit), int(offset)))
        return [FailedItem(id=int(r[0]), kind=Kind(r[1]), billmgr_id=int(r[2]), reason=str(r[3]),
                           attempts=int(r[4]), last_error=str(r[5] or ""),
                           first_queued_at=_aware(r[6]), updated_at=_aware(r[7]))
                for r in rows]

    def retry_failed(self, kind: Kind | None = None, ids: Sequence[int] | None = None) -> int:
        """Revive dead-letter rows (all, of a kind, or by queue row id) as pending and due now."""
        if ids is not None and not ids:
            return 0
        now = self._now()
        where = "state = 'failed'"
        args: list[object] = []
        if kind is not None:
            where += " AND kind = %s"
            args.append(kind.value)
        total = 0
        with self.transaction():
            for chunk in (_chunks(ids) if ids is not None else iter([None])):
                clause, extra = where, list(args)
                if chunk is not None:
                    clause += f" AND id IN ({_placeholders(chunk)})"
                    extra.extend(chunk)
                total += self._exec(
                    f"UPDATE amocrm_queue SET state = 'pending', attempts = 0, next_attempt_at = %s, "  # noqa: S608
                    f"first_queued_at = %s, updated_at = %s, version = version + 1 WHERE {clause}",
                    (now, now, now, *extra))
        return total

    # ------------------------------------------------------------------ links
    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        with self.transaction():
            for chunk in _chunks(billmgr_ids):
                rows = self._rows(f"SELECT billmgr_id, amocrm_id FROM {kind.link_table} "  # noqa: S608
                                  f"WHERE billmgr_id IN ({_placeholders(chunk)})", chunk)
                found.update({int(b): int(a) for b, a in rows})
        return found

    def put_link(self, kind: Kind, billmgr_id: int, amocrm_id: int) -> None:
        """Insert or replace the link row (billmgr_id is unique); clears the create intent."""
        self.put_links(kind, [(billmgr_id, amocrm_id)])

    def put_links(self, kind: Kind, pairs: Sequence[tuple[int, int]], clear_intents: bool = True) -> None:
        """``put_link`` for many (billmgr_id, amocrm_id): insert or replace, clear the intents.

        ``clear_intents=False`` is for a caller that clears them itself in the same
        transaction (``record_synced_many(..., created=True)``), one statement fewer."""
        with self.transaction():
            for part in _row_chunks(pairs):
                self._many(_PUT_LINK_SQL.format(table=kind.link_table), [(int(b), int(a)) for b, a in part])
                if clear_intents:
                    self._clear_creates(kind, [int(b) for b, _ in part])

    def drop_link(self, kind: Kind, billmgr_id: int) -> None:
        with self.transaction():
            self._exec(f"DELETE FROM {kind.link_table} WHERE billmgr_id = %s", (int(billmgr_id),))  # noqa: S608

    def delete_links(self, kind: Kind, ids: Sequence[int]) -> int:
        """Unbind: forget the links and sync state of these entities (amoCRM keeps its records)."""
        total = 0
        with self.transaction():
            for chunk in _chunks(ids):
                marks = _placeholders(chunk)
                total += self._exec(f"DELETE FROM {kind.link_table} WHERE billmgr_id IN ({marks})",  # noqa: S608
                                    chunk)
                self._exec(f"DELETE FROM amocrm_sync_state WHERE kind = %s AND billmgr_id IN ({marks})",  # noqa: S608
                           (kind.value, *chunk))
        return total

    # ------------------------------------------------------------------ exactly-once creates
    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime) -> None:
        """Record the intent; an earlier open intent keeps its (earlier) time so a marker
        search from it covers every attempt."""
        with self.transaction():
            self._bind_shared(kind, now)
            for chunk in _chunks(billmgr_ids):
                self._insert_rows(_BEGIN_CREATE_SQL, _BEGIN_CREATE_ROW, chunk, 1)

    def open_creates(self, kind: Kind, billmgr_ids: Sequence[int] | None = None) -> dict[int, datetime]:
        """billmgr_id -> when its create was attempted, for intents with no link yet."""
        base = (f"SELECT s.billmgr_id, s.create_started_at FROM amocrm_sync_state s "  # noqa: S608
                f"LEFT JOIN {kind.link_table} l ON l.billmgr_id = s.billmgr_id "
                f"WHERE s.kind = %s AND s.create_started_at IS NOT NULL AND l.id IS NULL")
        found: dict[int, datetime] = {}
        with self.transaction():
            if billmgr_ids is None:
                batches: list[tuple[str, list[object]]] = [(base, [kind.value])]
            else:
                batches = [(base + f" AND s.billmgr_id IN ({_placeholders(chunk)})", [kind.value, *chunk])
                           for chunk in _chunks(billmgr_ids)]
            for sql, args in batches:
                for billmgr_id, started in self._rows(sql, args):
                    found[int(billmgr_id)] = _aware(started)
        return found

    def clear_create(self, kind: Kind, billmgr_id: int) -> None:
        with self.transaction():
            self._clear_creates(kind, [int(billmgr_id)])

    def _clear_creates(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        for chunk in _chunks(billmgr_ids):
            self._exec(_CLEAR_CREATES_SQL.format(marks=_placeholders(chunk)), (kind.value, *chunk))

    def record_synced(self, kind: Kind, billmgr_id: int, now: datetime, fingerprint: str = "") -> None:
        """Last successful sync time (and a fingerprint of what was sent) for the bindings view."""
        self.record_synced_many(kind, [(billmgr_id, fingerprint)], now)

    def record_synced_many(self, kind: Kind, rows: Sequence[tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        """``record_synced`` for many (billmgr_id, fingerprint); ``created`` also clears the intents."""
        stamp = to_db(now)
        sql = _RECORD_SYNCED_SQL.replace("{clear}", ", create_started_at = NULL" if created else "")
        with self.transaction():
            self._bind_shared(kind, stamp)
            for part in _row_chunks(rows):
                args: list[object] = []
                for billmgr_id, fingerprint in part:
                    args.extend((int(billmgr_id), fingerprint[:128]))
                self._insert_rows(sql, _RECORD_SYNCED_ROW, args, 2)

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """What was last sent, so the worker can skip an update that would change nothing."""
        found: dict[int, str] = {}
        with self.transaction():
            for chunk in _chunks(billmgr_ids):
                rows = self._rows(f"SELECT billmgr_id, fingerprint FROM amocrm_sync_state "  # noqa: S608
                                  f"WHERE kind = %s AND billmgr_id IN ({_placeholders(chunk)}) "
                                  f"AND last_sync_at IS NOT NULL", (kind.value, *chunk))
                found.update({int(b): str(f) for b, f in rows})
        return found

    def link_counts(self) -> dict[Kind, int]:
        """How many BILLmanager entities of each kind are linked to amoCRM."""
        with self.transaction():
            return {kind: int(self._rows(f"SELECT COUNT(*) FROM {kind.link_table}")[0][0])  # noqa: S608
                    for kind in KIND_ORDER}                                          # fixed table names

    def last_sync_at(self, kind: Kind | None = None) -> datetime | None:
        """The newest successful sync (of a kind, or of any)."""
        sql, args = "SELECT MAX(last_sync_at) FROM amocrm_sync_state", []
        if kind is not None:
            sql += " WHERE kind = %s"
            args.append(kind.value)
        with self.transaction():
            return from_db(self._rows(sql, args)[0][0])

    # ------------------------------------------------------------------ bindings (panel list)
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
        parts: list[str] = []
        args: list[object] = []
        for each in kinds:
            parts.append(f"SELECT %s AS kind, billmgr_id, amocrm_id FROM {each.link_table}")  # noqa: S608
            args.append(each.value)
        parts.append("SELECT kind, billmgr_id, NULL FROM amocrm_queue "  # noqa: S608
                     f"WHERE kind IN ({_placeholders(kinds)})")
        args.extend(each.value for each in kinds)
        derived = f"""SELECT u.kind, u.billmgr_id, MAX(u.amocrm_id) AS amocrm_id,
                             FIELD(u.kind, 'contact', 'company', 'lead') AS kind_order,
                             CASE MAX(q.state) WHEN 'failed' THEN 'failed' WHEN 'pending' THEN 'queued'
                                  ELSE 'synced' END AS state,
                             MAX(q.last_error) AS last_error, MAX(s.last_sync_at) AS last_sync_at
                      FROM ({' UNION ALL '.join(parts)}) u
                      LEFT JOIN amocrm_queue q ON q.kind = u.kind AND q.billmgr_id = u.billmgr_id
                      LEFT JOIN amocrm_sync_state s ON s.kind = u.kind AND s.billmgr_id = u.billmgr_id
                      GROUP BY u.kind, u.billmgr_id"""  # noqa: S608 - fixed fragments only
        filters: list[str] = []
        if state is not None:
            filters.append("b.state = %s")
            args.append(state)
        if search:
            text = search.strip()
            if text.isdigit():
                filters.append("(b.billmgr_id = %s OR b.amocrm_id = %s)")
                args.extend((int(text), int(text)))
            else:
                filters.append("b.last_error LIKE %s")
                args.append("%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        where = ("WHERE " + " AND ".join(filters)) if filters else ""
        direction = "DESC" if descending else "ASC"
        body = f"FROM ({derived}) b {where}"  # noqa: S608 - only fixed fragments, values are bound
        with self.transaction():
            total = int(self._rows(f"SELECT COUNT(*) {body}", args)[0][0])
            rows = self._rows(
                f"SELECT b.kind, b.billmgr_id, b.amocrm_id, b.state, b.last_error, b.last_sync_at {body} "
                f"ORDER BY {BINDING_ORDERS[order]} {direction}, b.kind_order, b.billmgr_id "
                "LIMIT %s OFFSET %s",
                (*args, int(limit), int(offset)))
        return BindingsPage(
            rows=[Binding(kind=Kind(r[0]), billmgr_id=int(r[1]),
                          amocrm_id=None if r[2] is None else int(r[2]),
                          state=str(r[3]), last_error=str(r[4] or ""), last_sync_at=from_db(r[5]))
                  for r in rows],
            total=total)

    # ------------------------------------------------------------------ export progress, cursors
    def export_begin(self, kind: Kind) -> ExportProgress:
        """Start (or resume, if unfinished) the initial export of a kind."""
        now = self._now()
        with self.transaction():
            self._exec("""INSERT INTO amocrm_export_progress
                            (kind, started_at, last_id, enqueued, finished_at)
                          VALUES (%s, %s, 0, 0, NULL)
                          ON DUPLICATE KEY UPDATE
                            last_id = IF(finished_at IS NULL, last_id, 0),
                            enqueued = IF(finished_at IS NULL, enqueued, 0),
                            started_at = IF(finished_at IS NULL, started_at, VALUES(started_at)),
                            finished_at = NULL""", (kind.value, now))
            progress = self.export_progress(kind)
        assert progress is not None
        return progress

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        """Everything up to ``last_id`` is queued; ``enqueued`` more rows were added."""
        with self.transaction():
            self._exec("UPDATE amocrm_export_progress SET last_id = %s, enqueued = enqueued + %s "
                       "WHERE kind = %s", (int(last_id), int(enqueued), kind.value))

    def export_finish(self, kind: Kind) -> None:
        with self.transaction():
            self._exec("UPDATE amocrm_export_progress SET finished_at = %s WHERE kind = %s",
                       (self._now(), kind.value))

    def export_progress(self, kind: Kind) -> ExportProgress | None:
        with self.transaction():
            rows = self._rows("SELECT kind, started_at, last_id, enqueued, finished_at "
                              "FROM amocrm_export_progress WHERE kind = %s", (kind.value,))
        if not rows:
            return None
        r = rows[0]
        return ExportProgress(kind=Kind(r[0]), started_at=_aware(r[1]), last_id=int(r[2]),
                              enqueued=int(r[3]), finished_at=from_db(r[4]))

    def get_cursor(self, name: str) -> str | None:
        with self.transaction():
            rows = self._rows("SELECT value FROM amocrm_cursor WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    def set_cursor(self, name: str, value: str) -> None:
        with self.transaction():
            self._exec("INSERT INTO amocrm_cursor (name, value, updated_at) VALUES (%s, %s, %s) "
                       "ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)",
                       (name, value, self._now()))


if TYPE_CHECKING:
    def _implements_the_port(store: MySqlStore) -> Store:
        """mypy checks here that MySqlStore still matches ports.Store."""
        return store
