"""Set-at-a-time writes through any ``ports.Store``, so a batch of 250 costs a few statements.

Profiling the export showed the time went to MySQL round trips, not to amoCRM: one
``put_link`` + ``record_synced`` + ``complete`` per entity is four statements. The batch
forms (``enqueue_many``, ``put_links``, ``record_synced_many``, ``complete_many``) live in
``store.MySqlStore``; these helpers use them when a store has them and fall back to the
per-row port methods otherwise (the in-memory fakes of the engine tests).
"""

from __future__ import annotations

from datetime import datetime
from typing import Sequence, Tuple

from ..domain import Kind
from ..ports import QueueItem, Store


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
    if not created:
        return
    put_links = getattr(store, "put_links", None)
    record_many = getattr(store, "record_synced_many", None)
    if put_links is not None and record_many is not None:
        put_links(kind, [(b, a) for b, a, _ in created], clear_intents=False)
        record_many(kind, [(b, f) for b, _, f in created], now, created=True)
        return
    for billmgr_id, amocrm_id, fingerprint in created:
        store.put_link(kind, billmgr_id, amocrm_id)
        store.record_synced(kind, billmgr_id, now, fingerprint)


def bulk_put_links(store: Store, kind: Kind, pairs: Sequence[Tuple[int, int]]) -> None:
    """Links (and cleared intents) of adopted entities: (billmgr_id, amocrm_id)."""
    if not pairs:
        return
    many = getattr(store, "put_links", None)
    if many is not None:
        many(kind, pairs)
        return
    for billmgr_id, amocrm_id in pairs:
        store.put_link(kind, billmgr_id, amocrm_id)


def bulk_record_synced(store: Store, kind: Kind, rows: Sequence[Tuple[int, str]], now: datetime) -> None:
    if not rows:
        return
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
