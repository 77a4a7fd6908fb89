"""``Store`` and ``Lease``: the module's own tables as the sync core uses them (``store/``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import ContextManager, Iterator, Mapping, Optional, Protocol, Sequence

from ..domain import Kind, ServiceEvent


@dataclass(frozen=True)
class QueueItem:
    id: int
    kind: Kind
    billmgr_id: int
    reason: str           # open | prolong | edit | export | reconcile | resync
    version: int          # bumped by every coalesced enqueue
    attempts: int
    first_queued_at: datetime


@dataclass(frozen=True)
class ExportProgress:
    """How far the queueing of one kind's initial export got (it resumes after ``last_id``)."""

    kind: Kind
    started_at: datetime
    last_id: int
    enqueued: int
    finished_at: Optional[datetime]


@dataclass(frozen=True)
class EngineHolder:
    """Who runs the engine, as it registered itself."""

    host: str
    pid: int
    command: str
    since: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return (f"{self.command} (pid {self.pid} on {self.host}, since "
                f"{self.since:%Y-%m-%d %H:%M:%S} UTC)")


class Lease(Protocol):
    """One engine at a time for the database (``store/lease.py``)."""

    def engaged(self) -> ContextManager[object]:
        """Hold the lease for a block (or run under the one already held); ``EngineBusy`` if taken."""

    def verify(self, store: Store) -> None:
        """``LeaseLost`` unless the lease is still ours, checked on ``store``'s connection."""


class Store(Protocol):
    """The module's tables as the sync core uses them: queue, links, create intents, sync state.

    Every method is its own unit of work unless called inside ``transaction()``. Times
    given may be naive (taken as UTC) or aware; times returned are aware UTC. The status
    screen's and the panel's read model, the export progress and cursors are the
    adapter's own (``store/``), not part of this port.
    """

    def transaction(self) -> ContextManager[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""

    # Queue: one row per (kind, billmgr_id).
    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        """Coalesce: one row per (kind, billmgr_id); a new event bumps its version, keeps its
        age and attempts and makes it due now. A failed row is revived as pending with
        attempts 0 and a fresh age. Reason precedence: open > prolong > the rest (newest)."""

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        """``enqueue`` for many ids of one kind."""

    def recheck(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        """Queue a recheck (reason ``reconcile``: sent only if it changed) of the entities that have
        no row; a row already queued, pending or failed, stays exactly as it is."""

    def claim_after(self, kind: Kind, limit: int, now: datetime,
                    after: Optional[QueueItem]) -> list[QueueItem]:
        """Pending rows of a kind due at ``now``, in (first_queued_at, id) order, after
        ``after`` in that order (None: from the first)."""

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        """Delete each row whose version is the claimed one; a row that got a newer event stays
        pending with attempts 0 and no error."""

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None:
        """Count the attempt, keep the error, make a pending row due ``delay_seconds`` from now."""

    def postpone(self, item: QueueItem, why: str, delay_seconds: float) -> None:
        """Make a pending row due ``delay_seconds`` from now without counting an attempt."""

    def fail(self, item: QueueItem, reason: str) -> None:
        """Dead-letter: state failed with the reason; stays visible until retried. If a newer
        event came since the claim the row stays pending, the error noted."""

    def failed_ids(self, kind: Kind) -> set[int]:
        """BILLmanager ids of the dead-lettered rows of a kind (the reconciler leaves them alone)."""

    # Links: billmgr_id -> amoCRM id, one per entity.
    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]: ...

    def put_links(self, kind: Kind, pairs: Sequence[tuple[int, int]],
                  clear_intents: bool = True) -> dict[int, int]:
        """Insert or replace (billmgr_id, amocrm_id) links; ``clear_intents``: end their create intents.

        One amoCRM entity is linked to one BILLmanager entity: a pair whose amoCRM id another
        BILLmanager id holds (or claims earlier in ``pairs``) is not written, and is returned
        as billmgr_id -> that holder, for the caller to fail that record."""

    def linked_to(self, kind: Kind, amocrm_ids: Sequence[int]) -> dict[int, int]:
        """amocrm_id -> the BILLmanager id linked to it, for the amoCRM ids that are linked."""

    def drop_link(self, kind: Kind, billmgr_id: int) -> None: ...

    def bound_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """Every linked BILLmanager id of a kind, ascending, in pages."""

    # Unlinked by an admin (``amocrm unlink``): the amoCRM entities whose marker the next pass
    # takes off (sync/unmark.py), as (amoCRM id, the BILLmanager id the marker named).
    def unmarks(self, kind: Kind, limit: int) -> list[tuple[int, int]]:
        """The oldest unlinks of a kind whose marker is still to be taken off."""

    def unmarks_pending(self) -> bool: ...

    def forget_unmarks(self, kind: Kind, amocrm_ids: Sequence[int]) -> None:
        """Their marker is off, or is not the unlinked record's to take off."""

    # Exactly-once create protocol: an intent row is written (and committed) before the
    # POST; a link clears it. An intent without a link after a crash or an ambiguous
    # answer means "may exist in amoCRM": settle it by the marker before creating again.
    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime, token: str = "") -> None:
        """Record the intents, with the create request's ``token``; an open intent keeps its
        earlier time and token."""

    def intent_tokens(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """billmgr_id -> the token of its open create intent (those that have one)."""

    def open_creates(self, kind: Kind, billmgr_ids: Optional[Sequence[int]] = None) -> dict[int, datetime]:
        """billmgr_id -> when its create was attempted, for intents with no link yet."""

    def clear_create(self, kind: Kind, billmgr_id: int) -> None: ...

    # Sync state.
    def record_synced_many(self, kind: Kind, rows: Sequence[tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        """Last successful sync time and a fingerprint of what was sent, per (billmgr_id,
        fingerprint); ``created`` also clears the create intents."""

    def link_created(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime) -> dict[int, int]:
        """Entities just created, (billmgr_id, amocrm_id, fingerprint): links and sync state
        written and their create intents ended, in one unit of work. The conflicts of
        :meth:`put_links` are returned, with no link and no sync state written for them."""

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """What was last sent, for entities synced at least once."""

    def lock_holder(self, name: str) -> Optional[int]:
        """The connection id holding a MySQL named lock (None: free); the engine lease's fence."""

    # Service event history: the last event of each item.
    def record_service_events(self, events: Sequence[tuple[int, ServiceEvent]], now: datetime) -> None:
        """(item id, event): the item's last service event is this one, synced at ``now``."""

    def service_events(self, billmgr_ids: Sequence[int]) -> dict[int, ServiceEvent]:
        """item id -> its last service event, for the items that had one."""

    # Daily counts: what the module did each day (the panel's report, the status view).
    def count_daily(self, counts: Mapping[str, int], now: datetime) -> None:
        """Adds ``counts`` (metric -> how many; zeros ignored) to the counts of ``now``'s local day."""

    def daily_counts(self, since: date) -> dict[date, dict[str, int]]:
        """day -> metric -> count, for every day from ``since`` on that has a count."""

    # Export progress and named cursors.
    def export_begin(self, kind: Kind) -> ExportProgress:
        """Start (or resume, if unfinished) the initial export of a kind."""

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        """Everything up to ``last_id`` is queued; ``enqueued`` more rows were added."""

    def export_finish(self, kind: Kind) -> None: ...

    def get_cursor(self, name: str) -> Optional[str]: ...

    def set_cursor(self, name: str, value: str) -> None: ...


