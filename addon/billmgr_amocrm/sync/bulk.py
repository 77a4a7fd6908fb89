"""Set-at-a-time writes, so a batch of 250 costs a few statements.

Profiling the export showed the time went to MySQL round trips, not to amoCRM: one
``put_link`` + ``record_synced`` + ``complete`` per entity is four statements. The batch
forms (``enqueue_many``, ``put_links``, ``record_synced_many``, ``complete_many``,
``claim_after``) are part of what the sync core needs from a store: :class:`BulkStore`
(``store.MySqlStore`` and the test fakes implement it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional, Protocol, Sequence, Tuple

from ..domain import Kind
from ..ports import QueueItem, Store


class BulkStore(Store, Protocol):
    """``ports.Store`` plus the set-at-a-time forms the engine and the export use."""

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None: ...

    def claim_after(self, kind: Kind, limit: int, now: datetime,
                    after: Optional[QueueItem]) -> list[QueueItem]: ...

    def put_links(self, kind: Kind, pairs: Sequence[Tuple[int, int]], clear_intents: bool = True) -> None: ...

    def record_synced_many(self, kind: Kind, rows: Sequence[Tuple[int, str]], now: datetime,
                           created: bool = False) -> None: ...

    def complete_many(self, items: Sequence[QueueItem]) -> None: ...

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]: ...


def bulk_enqueue(store: BulkStore, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
    if billmgr_ids:
        store.enqueue_many(kind, billmgr_ids, reason)


def bulk_link_created(store: BulkStore, kind: Kind, created: Sequence[Tuple[int, int, str]],
                      now: datetime) -> None:
    """Links + sync state of entities just created: (billmgr_id, amocrm_id, fingerprint)."""
    if not created:
        return
    # record_synced_many(created=True) clears the intents: put_links need not do it again
    store.put_links(kind, [(b, a) for b, a, _ in created], clear_intents=False)
    store.record_synced_many(kind, [(b, f) for b, _, f in created], now, created=True)


def bulk_put_links(store: BulkStore, kind: Kind, pairs: Sequence[Tuple[int, int]]) -> None:
    """Links (and cleared intents) of adopted entities: (billmgr_id, amocrm_id)."""
    if pairs:
        store.put_links(kind, pairs)


def bulk_record_synced(store: BulkStore, kind: Kind, rows: Sequence[Tuple[int, str]], now: datetime) -> None:
    if rows:
        store.record_synced_many(kind, rows, now)


def bulk_complete(store: BulkStore, items: Sequence[QueueItem]) -> None:
    if items:
        store.complete_many(items)
