"""``FakeStore``: the MySQL store in memory, held to the same contract by tests/store/test_contract_*.py.

It implements ``ports.Store`` and the parts of ``MySqlStore`` the sync core and the
contract use besides (dead letters, queue stats, export progress, cursors, unbinding);
not the panel's read model. Its rules are MySqlStore's (see store/queue.py and
store/links.py): coalescing with reason precedence open > prolong > the rest, revival
of failed rows with a fresh age and attempts 0, version-checked completion and
failure, intents ended by links, fingerprints only for synced entities. Times given are
taken as UTC when naive; times returned are aware UTC.

State, public for assertions:
    queue      (kind, billmgr_id) -> QueueRow (every column of amocrm_queue; failed rows too)
    link_rows  kind -> {billmgr_id: amocrm_id}
    intents    (kind, billmgr_id) -> when the open create intent was recorded
    synced     (kind, billmgr_id) -> last successful sync
    sent       (kind, billmgr_id) -> fingerprint of what was sent
    exports    kind -> ExportProgress;   cursors  name -> value
    events     item id -> (its last service event, when it was recorded)

Units of work: every method runs in ``transaction()``, which records what it overwrites
and puts it back if the unit fails; nested use joins the outer one. The engine's
read-ahead and write-behind threads may share one fake, so each method holds a lock
while it runs and each thread has its own transaction. Not modelled: row locks (SKIP
LOCKED, or a write waiting for another open transaction that wrote the same row).
"""

from __future__ import annotations

import itertools
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from billmgr_amocrm.domain import KIND_ORDER, Kind, ServiceEvent
from billmgr_amocrm.foundation.clock import as_utc, local_day, utcnow
from billmgr_amocrm.ports import ExportProgress, QueueItem
from billmgr_amocrm.store.links import FINGERPRINT_MAX_CHARS, link_conflicts
from billmgr_amocrm.store.queue import ERROR_MAX_CHARS, RECHECK, FailedItem, QueueStats

_MISSING = object()
# MySQL: suspend/resume/close 3, then FIELD(reason, 'prolong', 'open'); the rest 0
_RANK = {"prolong": 1, "open": 2, "suspend": 3, "resume": 3, "close": 3}

Key = tuple[Kind, int]


@dataclass(frozen=True)
class QueueRow:
    id: int
    kind: Kind
    billmgr_id: int
    reason: str
    version: int
    state: str                  # pending | failed
    attempts: int
    next_attempt_at: datetime
    first_queued_at: datetime
    updated_at: datetime
    last_error: Optional[str] = None

    def item(self) -> QueueItem:
        return QueueItem(self.id, self.kind, self.billmgr_id, self.reason, self.version, self.attempts,
                         self.first_queued_at)


@dataclass
class FakeStore:
    clock: Callable[[], datetime] = utcnow
    queue: dict[Key, QueueRow] = field(default_factory=dict)
    link_rows: dict[Kind, dict[int, int]] = field(default_factory=lambda: {k: {} for k in Kind})
    intents: dict[Key, datetime] = field(default_factory=dict)
    intent_token: dict[Key, str] = field(default_factory=dict)
    synced: dict[Key, datetime] = field(default_factory=dict)
    sent: dict[Key, str] = field(default_factory=dict)
    exports: dict[Kind, ExportProgress] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)
    # MySQL named locks held, name -> connection id (tests set it; the engine lease's fence reads it)
    named_locks: dict[str, int] = field(default_factory=dict)
    events: dict[int, tuple[ServiceEvent, datetime]] = field(default_factory=dict)
    daily: dict[tuple[date, str], int] = field(default_factory=dict)
    # (kind, amoCRM id) -> (the BILLmanager id its marker named, when it was unlinked)
    unmark_rows: dict[tuple[Kind, int], tuple[int, datetime]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    # ------------------------------------------------------------------ units of work
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""
        if getattr(self._local, "undo", None) is not None:
            yield
            return
        undo: list[tuple[dict[Any, Any], Any, Any]] = []
        self._local.undo = undo
        try:
            yield
        except BaseException:
            with self._lock:
                for table, key, old in reversed(undo):
                    if old is _MISSING:
                        table.pop(key, None)
                    else:
                        table[key] = old
            raise
        finally:
            self._local.undo = None

    @contextmanager
    def _unit(self) -> Iterator[None]:
        with self._lock, self.transaction():
            yield

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._remember(table, key)
        table[key] = value

    def _drop(self, table: dict[Any, Any], key: Any) -> bool:
        if key not in table:
            return False
        self._remember(table, key)
        del table[key]
        return True

    def _remember(self, table: dict[Any, Any], key: Any) -> None:
        undo = getattr(self._local, "undo", None)
        if undo is not None:
            undo.append((table, key, table.get(key, _MISSING)))

    def _now(self) -> datetime:
        return as_utc(self.clock())

    def _row_of(self, item: QueueItem) -> Optional[QueueRow]:
        """The queue row an item was claimed from (the same row id), if it still exists."""
        row = self.queue.get((item.kind, item.billmgr_id))
        return row if row is not None and row.id == item.id else None

    # ------------------------------------------------------------------ queue
    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        self.enqueue_many(kind, [billmgr_id], reason)

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        now = self._now()
        with self._unit():
            for billmgr_id in sorted({int(i) for i in billmgr_ids}):
                old = self.queue.get((kind, billmgr_id))
                if old is None:
                    row = QueueRow(next(self._ids), kind, billmgr_id, reason, 1, "pending", 0, now, now, now)
                else:
                    revived = old.state == "failed"
                    kept = reason if _RANK.get(reason, 0) >= _RANK.get(old.reason, 0) else old.reason
                    row = replace(old, reason=kept, attempts=0 if revived else old.attempts,
                                  first_queued_at=now if revived else old.first_queued_at,
                                  version=old.version + 1, next_attempt_at=now, updated_at=now,
                                  state="pending")
                self._put(self.queue, (kind, billmgr_id), row)

    def recheck(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        absent = [i for i in {int(i) for i in billmgr_ids} if (kind, i) not in self.queue]
        self.enqueue_many(kind, absent, RECHECK)

    def claim_after(self, kind: Kind, limit: int, now: datetime,
                    after: Optional[QueueItem]) -> list[QueueItem]:
        due = as_utc(now)
        with self._unit():
            found = sorted((r for r in self.queue.values()
                            if r.kind is kind and r.state == "pending" and r.next_attempt_at <= due),
                           key=lambda r: (r.first_queued_at, r.id))
        if after is not None:
            past = (as_utc(after.first_queued_at), after.id)
            found = [r for r in found if (r.first_queued_at, r.id) > past]
        return [r.item() for r in found[:max(0, int(limit))]]

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        now = self._now()
        with self._unit():
            for item in items:
                row = self._row_of(item)
                if row is None:
                    continue
                if row.version == item.version:
                    self._drop(self.queue, (item.kind, item.billmgr_id))
                else:       # a newer event came: this sync succeeded, it starts with a clean slate
                    self._put(self.queue, (item.kind, item.billmgr_id),
                              replace(row, attempts=0, last_error=None, updated_at=now))

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None:
        now = self._now()
        with self._unit():
            row = self._row_of(item)
            if row is not None and row.state == "pending":
                self._put(self.queue, (item.kind, item.billmgr_id), replace(
                    row, attempts=row.attempts + 1, last_error=error[:ERROR_MAX_CHARS], updated_at=now,
                    next_attempt_at=now + timedelta(seconds=max(0.0, float(delay_seconds)))))

    def postpone(self, item: QueueItem, why: str, delay_seconds: float) -> None:
        now = self._now()
        with self._unit():
            row = self._row_of(item)
            if row is not None and row.state == "pending":
                self._put(self.queue, (item.kind, item.billmgr_id), replace(
                    row, last_error=why[:ERROR_MAX_CHARS], updated_at=now,
                    next_attempt_at=now + timedelta(seconds=max(0.0, float(delay_seconds)))))

    def fail(self, item: QueueItem, reason: str) -> None:
        now = self._now()
        with self._unit():
            row = self._row_of(item)
            if row is not None:
                self._put(self.queue, (item.kind, item.billmgr_id), replace(
                    row, attempts=row.attempts + 1, last_error=reason[:ERROR_MAX_CHARS], updated_at=now,
                    state="failed" if row.version == item.version else "pending"))

    def queue_stats(self) -> QueueStats:
        with self._unit():
            rows = list(self.queue.values())
        pending = {k: sum(1 for r in rows if r.kind is k and r.state == "pending") for k in KIND_ORDER}
        failed = {k: sum(1 for r in rows if r.kind is k and r.state == "failed") for k in KIND_ORDER}
        ages = [r.first_queued_at for r in rows if r.state == "pending"]
        return QueueStats(pending=pending, failed=failed, oldest_pending_at=min(ages) if ages else None)

    def due_count(self, now: datetime) -> int:
        return sum(1 for r in self.queue.values() if r.state == "pending" and r.next_attempt_at <= now)

    def lock_holder(self, name: str) -> Optional[int]:
        return self.named_locks.get(name)

    def failed_ids(self, kind: Kind) -> set[int]:
        return {k[1] for k, row in self.queue.items() if k[0] is kind and row.state == "failed"}

    def failed(self, kind: Optional[Kind] = None, limit: int = 50, offset: int = 0) -> list[FailedItem]:
        with self._unit():
            rows = sorted((r for r in self.queue.values()
                           if r.state == "failed" and (kind is None or r.kind is kind)),
                          key=lambda r: (r.updated_at, r.id), reverse=True)
        return [FailedItem(r.id, r.kind, r.billmgr_id, r.reason, r.attempts, r.last_error or "",
                           r.first_queued_at, r.updated_at)
                for r in rows[offset:offset + limit]]

    def retry_failed(self, kind: Optional[Kind] = None, ids: Optional[Sequence[int]] = None) -> int:
        if ids is not None and not ids:
            return 0
        wanted = None if ids is None else {int(i) for i in ids}
        now = self._now()
        revived = 0
        with self._unit():
            for key, row in list(self.queue.items()):
                if row.state != "failed" or (kind is not None and row.kind is not kind) \
                        or (wanted is not None and row.id not in wanted):
                    continue
                self._put(self.queue, key, replace(row, state="pending", attempts=0, version=row.version + 1,
                                                   next_attempt_at=now, first_queued_at=now, updated_at=now))
                revived += 1
        return revived

    def make_due(self) -> None:
        """Test helper: every row due now, whatever its backoff."""
        with self._lock:
            earlier = self._now() - timedelta(seconds=1)
            for key, row in list(self.queue.items()):
                self.queue[key] = replace(row, next_attempt_at=earlier)

    # ------------------------------------------------------------------ links, intents, sync state
    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]:
        with self._unit():
            linked = self.link_rows[kind]
            return {i: linked[i] for i in sorted({int(i) for i in billmgr_ids}) if i in linked}

    def put_links(self, kind: Kind, pairs: Sequence[tuple[int, int]],
                  clear_intents: bool = True) -> dict[int, int]:
        wanted = [(int(b), int(a)) for b, a in pairs]
        with self._unit():
            conflicts = link_conflicts(wanted, self.linked_to(kind, [a for _, a in wanted]))
            for billmgr_id, amocrm_id in wanted:
                if billmgr_id in conflicts:
                    continue
                self._put(self.link_rows[kind], billmgr_id, amocrm_id)
                if clear_intents:
                    self._drop(self.intents, (kind, billmgr_id))
        return conflicts

    def linked_to(self, kind: Kind, amocrm_ids: Sequence[int]) -> dict[int, int]:
        wanted = {int(a) for a in amocrm_ids}
        with self._unit():
            return {a: b for b, a in self.link_rows[kind].items() if a in wanted}

    def bound_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        with self._unit():
            ids = sorted(i for i in self.link_rows[kind] if i > after_id)
        for start in range(0, len(ids), batch):
            yield ids[start:start + batch]

    def drop_link(self, kind: Kind, billmgr_id: int) -> None:
        with self._unit():
            self._drop(self.link_rows[kind], int(billmgr_id))

    def delete_links(self, kind: Kind, ids: Sequence[int]) -> int:
        deleted = 0
        with self._unit():
            for billmgr_id in {int(i) for i in ids}:
                amocrm_id = self.link_rows[kind].get(billmgr_id)
                if amocrm_id is not None:
                    self._put(self.unmark_rows, (kind, amocrm_id), (billmgr_id, as_utc(self.clock())))
                deleted += self._drop(self.link_rows[kind], billmgr_id)
                for table in (self.intents, self.synced, self.sent):
                    self._drop(table, (kind, billmgr_id))
        return deleted

    def unmarks(self, kind: Kind, limit: int) -> list[tuple[int, int]]:
        with self._unit():
            rows = sorted(((at, a, b) for (k, a), (b, at) in self.unmark_rows.items() if k is kind))
            return [(a, b) for _, a, b in rows[:limit]]

    def unmarks_pending(self) -> bool:
        with self._unit():
            return bool(self.unmark_rows)

    def forget_unmarks(self, kind: Kind, amocrm_ids: Sequence[int]) -> None:
        with self._unit():
            for amocrm_id in amocrm_ids:
                self._drop(self.unmark_rows, (kind, int(amocrm_id)))

    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime, token: str = "") -> None:
        with self._unit():
            for billmgr_id in {int(i) for i in billmgr_ids}:
                if (kind, billmgr_id) not in self.intents:
                    self._put(self.intents, (kind, billmgr_id), as_utc(now))
                    self._put(self.intent_token, (kind, billmgr_id), token)

    def intent_tokens(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        with self._unit():
            return {i: self.intent_token[(kind, i)] for i in {int(i) for i in billmgr_ids}
                    if (kind, i) in self.intents and self.intent_token.get((kind, i))}

    def open_creates(self, kind: Kind, billmgr_ids: Optional[Sequence[int]] = None) -> dict[int, datetime]:
        wanted = None if billmgr_ids is None else {int(i) for i in billmgr_ids}
        with self._unit():
            return {i: t for (k, i), t in self.intents.items()
                    if k is kind and (wanted is None or i in wanted) and i not in self.link_rows[kind]}

    def clear_create(self, kind: Kind, billmgr_id: int) -> None:
        with self._unit():
            self._drop(self.intents, (kind, int(billmgr_id)))

    def link_created(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime) -> dict[int, int]:
        with self._unit():
            conflicts = self.put_links(kind, [(b, a) for b, a, _ in rows], clear_intents=False)
            self.record_synced_many(kind, [(b, f) for b, _, f in rows if int(b) not in conflicts], now,
                                    created=True)
        return conflicts

    def record_synced_many(self, kind: Kind, rows: Sequence[tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        with self._unit():
            for billmgr_id, fingerprint in rows:
                key = (kind, int(billmgr_id))
                self._put(self.synced, key, as_utc(now))
                self._put(self.sent, key, fingerprint[:FINGERPRINT_MAX_CHARS])
                if created:
                    self._drop(self.intents, key)

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        with self._unit():
            return {i: self.sent[(kind, i)] for i in {int(i) for i in billmgr_ids}
                    if (kind, i) in self.synced}

    # ------------------------------------------------------------------ service event history
    def record_service_events(self, events: Sequence[tuple[int, ServiceEvent]], now: datetime) -> None:
        with self._unit():
            for item, event in events:
                self._put(self.events, int(item), (ServiceEvent(event), as_utc(now)))

    def service_events(self, billmgr_ids: Sequence[int]) -> dict[int, ServiceEvent]:
        with self._unit():
            return {i: self.events[i][0] for i in {int(i) for i in billmgr_ids} if i in self.events}

    # ------------------------------------------------------------------ daily counts
    def count_daily(self, counts: Mapping[str, int], now: datetime) -> None:
        day = local_day(now)
        with self._unit():
            for metric, n in counts.items():
                if n > 0:
                    old = self.daily.get((day, metric), 0)
                    self._put(self.daily, (day, metric), old + int(n))

    def daily_counts(self, since: date) -> dict[date, dict[str, int]]:
        with self._unit():
            found: dict[date, dict[str, int]] = {}
            for (day, metric), n in sorted(self.daily.items()):
                if day >= since:
                    found.setdefault(day, {})[metric] = n
            return found

    # ------------------------------------------------------------------ export progress, cursors
    def export_begin(self, kind: Kind) -> ExportProgress:
        now = self._now()
        with self._unit():
            old = self.exports.get(kind)
            if old is None or old.finished_at is not None:
                self._put(self.exports, kind, ExportProgress(kind, now, 0, 0, None))
            return self.exports[kind]

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        with self._unit():
            old = self.exports.get(kind)
            if old is not None:
                self._put(self.exports, kind,
                          replace(old, last_id=int(last_id), enqueued=old.enqueued + int(enqueued)))

    def export_finish(self, kind: Kind) -> None:
        now = self._now()
        with self._unit():
            old = self.exports.get(kind)
            if old is not None:
                self._put(self.exports, kind, replace(old, finished_at=now))

    def export_progress(self, kind: Kind) -> Optional[ExportProgress]:
        with self._unit():
            return self.exports.get(kind)

    def get_cursor(self, name: str) -> Optional[str]:
        with self._unit():
            return self.cursors.get(name)

    def set_cursor(self, name: str, value: str) -> None:
        with self._unit():
            self._put(self.cursors, name, value)
