"""The durable queue (``amocrm_queue``): one row per entity waiting to be synced.

Rules (the statements are in ``queries.sql``):
  * one row per (kind, billmgr_id); a new event bumps ``version``, makes it due now,
    keeps ``first_queued_at`` (its age) and ``attempts`` (the backoff history);
  * a failed (dead-letter) row is revived as pending with a fresh age and attempts 0
    (the same as ``retry_failed``), so the status screen's "oldest pending" is not
    an alarm about an old, already reported failure;
  * reason precedence: ``suspend``/``resume``/``close`` > ``open`` > ``prolong`` > the
    rest, failed rows included. The service events say what happened to a service (the
    worker maps them to a pipeline stage), so a later ``edit``/``reconcile``/``export``
    must not erase them; ``open`` stays ``open`` until the row is done (the worker reads
    fresh data when it runs, so a prolong folded into it loses nothing). The lifecycle
    events follow the item's status, so among them the newest wins (a resume after a
    suspend is the service's state now), and a service opened and suspended before the
    worker ran is created where its suspension puts it. Among the other reasons the
    newest wins;
  * ``complete_many`` deletes a row only if its version is the one claimed; a row that
    got a newer event stays pending with a clean slate (attempts 0, no error);
  * ``fail`` dead-letters a row only if no newer event came since its claim;
  * ``recheck`` adds a ``reconcile`` row only where there is none: a row already
    queued, pending or failed, is left as it is.

Concurrency: exactly one worker drains the queue (it holds ``var/amocrm/amocrm_task.lock``),
so a claim needs no lease. ``claim_after`` adds ``FOR UPDATE SKIP LOCKED`` (MariaDB >= 10.6,
MySQL >= 8) when called inside an explicit ``transaction()``, so a caller that holds
the transaction gets rows no other transaction has; outside one the locks would end
with the claim's own commit anyway, so it is a plain ordered SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from ..domain import KIND_ORDER, Kind
from ..foundation.clock import from_db, seconds_between, to_db
from ..ports import QueueItem
from .queries import NOTHING, fragment, joined, marks, sql
from .unit_of_work import UnitOfWork, aware, chunks, row_chunks

ERROR_MAX_CHARS = 4000
# the reason of a recheck: the worker sends it only if what it would send changed
RECHECK = "reconcile"


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


class Queue(UnitOfWork):
    """The queue's part of ``MySqlStore``."""

    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        """Coalesce into the (kind, billmgr_id) row: see the module docstring for the rules."""
        self.enqueue_many(kind, [billmgr_id], reason)

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        """``enqueue`` for many ids of one kind (coalescing exactly like it), a statement per chunk."""
        if not billmgr_ids:
            return
        with self.transaction():
            self._bind_shared(kind, self._now(), reason)
            for part in chunks(billmgr_ids):
                self._insert_rows("enqueue", "enqueue_row", part, 1)

    def recheck(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        """Queue a recheck (reason reconcile) of the entities that have no row; a row already
        there, pending or failed, keeps its reason (an export or a resync is not weakened)."""
        with self.transaction():
            self._bind_shared(kind, self._now(), RECHECK)
            for part in chunks(billmgr_ids):   # enqueue_many's rows, but only where none is queued
                self._insert_rows("enqueue_absent", "enqueue_row", part, 1)

    def claim_after(self, kind: Kind, limit: int, now: datetime, after: QueueItem | None) -> list[QueueItem]:
        """Pending rows of a kind due at ``now``, oldest first (first_queued_at, then id),
        continuing past ``after`` (None: from the start)."""
        args: list[object] = [kind.value, to_db(now)]
        keyset = NOTHING
        if after is not None:
            keyset = fragment("claim_keyset")
            args.extend((to_db(after.first_queued_at), to_db(after.first_queued_at), int(after.id)))
        lock = fragment("skip_locked") if self._depth and self.supports_skip_locked else NOTHING
        if lock is not NOTHING:
            self._writing()   # a locking read: it holds row locks like a write
        with self.transaction():
            found = self._rows(sql("claim", after=keyset, lock=lock), (*args, int(limit)))
        # The kind is the one asked for (WHERE kind = ...): not read back per row.
        return [QueueItem(id=int(r[0]), kind=kind, billmgr_id=int(r[1]), reason=str(r[2]),
                          version=int(r[3]), attempts=int(r[4]), first_queued_at=aware(r[5]))
                for r in found]

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        """Delete each claimed row if its version is unchanged; a row that got a newer event
        stays pending with attempts 0 and no error. Two statements per chunk at most."""
        if not items:
            return
        with self.transaction():
            for part in row_chunks(items):
                ids = [int(i.id) for i in part]
                by_version: dict[int, list[int]] = {}
                for item in part:
                    by_version.setdefault(int(item.version), []).append(int(item.id))
                versions = joined((fragment("complete_version", ids=marks(len(group)))
                                   for group in by_version.values()), " OR ")
                args = [value for version, group in by_version.items() for value in (version, *group)]
                if self._exec(sql("complete", versions=versions), args) == len(set(ids)):
                    continue
                self._exec(sql("complete_newer", ids=marks(len(ids))), (self._now(), *ids))

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None:
        """Count the attempt, keep the error, and make the row due after the delay (if still pending)."""
        now = self._now()
        due = now + timedelta(seconds=max(0.0, float(delay_seconds)))
        with self.transaction():
            self._exec(sql("retry"), (due, error[:ERROR_MAX_CHARS], now, int(item.id)))

    def postpone(self, item: QueueItem, why: str, delay_seconds: float) -> None:
        """Make the row due after the delay without counting an attempt: nothing failed, it is
        not time yet (a create whose answer may still be in flight)."""
        now = self._now()
        due = now + timedelta(seconds=max(0.0, float(delay_seconds)))
        with self.transaction():
            self._exec(sql("postpone"), (due, why[:ERROR_MAX_CHARS], now, int(item.id)))

    def fail(self, item: QueueItem, reason: str) -> None:
        """Dead-letter: state failed with the reason; stays visible until retried.

        If a newer event came while the item was processed (version moved) the row stays
        pending with the error noted: the new data may well be what fixes it.
        """
        with self.transaction():
            self._exec(sql("fail"), (reason[:ERROR_MAX_CHARS], self._now(), int(item.version), int(item.id)))

    def queue_stats(self) -> QueueStats:
        with self.transaction():
            counts = self._rows(sql("queue_counts"))
            oldest = self._rows(sql("oldest_pending"))
        pending = {kind: 0 for kind in KIND_ORDER}
        failed = {kind: 0 for kind in KIND_ORDER}
        for kind_value, state, count in counts:
            try:
                kind = Kind(kind_value)
            except ValueError:
                continue
            (pending if state == "pending" else failed)[kind] = int(count)
        return QueueStats(pending=pending, failed=failed, oldest_pending_at=from_db(oldest[0][0]))

    def due_count(self, now: datetime) -> int:
        """Pending rows due at ``now`` (what an engine would send now)."""
        with self.transaction():
            return int(self._rows(sql("due_count"), (to_db(now),))[0][0])

    def failed_ids(self, kind: Kind) -> set[int]:
        """BILLmanager ids of the dead-lettered rows of a kind."""
        with self.transaction():
            return {int(r[0]) for r in self._rows(sql("failed_ids"), (kind.value,))}

    def failed(self, kind: Kind | None = None, limit: int = 50, offset: int = 0) -> list[FailedItem]:
        """Dead-letter rows, most recently failed first."""
        kind_value = None if kind is None else kind.value
        with self.transaction():
            found = self._rows(sql("failed_rows"), (kind_value, kind_value, int(limit), int(offset)))
        return [FailedItem(id=int(r[0]), kind=Kind(r[1]), billmgr_id=int(r[2]), reason=str(r[3]),
                           attempts=int(r[4]), last_error=str(r[5] or ""),
                           first_queued_at=aware(r[6]), updated_at=aware(r[7]))
                for r in found]

    def retry_failed(self, kind: Kind | None = None, ids: Sequence[int] | None = None) -> int:
        """Revive dead-letter rows (all, of a kind, or by queue row id) as pending and due now,
        with attempts 0 and a fresh age; how many were revived."""
        if ids is not None and not ids:
            return 0
        now = self._now()
        kind_value = None if kind is None else kind.value
        shared: list[object] = [now, now, now, kind_value, kind_value]
        total = 0
        with self.transaction():
            if ids is None:
                return self._exec(sql("retry_failed", only_ids=NOTHING), shared)
            for chunk in chunks(ids):
                only_ids = fragment("and_id_in", ids=marks(len(chunk)))
                total += self._exec(sql("retry_failed", only_ids=only_ids), (*shared, *chunk))
        return total
