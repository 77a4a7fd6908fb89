"""Initial export (and "resync all"): every BILLmanager entity goes through the queue.

Ids are streamed from ``BillingReader.iter_ids`` (keyset pagination) and queued
per chunk in one transaction together with the persisted cursor
(``export_advance``), so a crash resumes where it stopped; the queue's
coalescing and the exactly-once create protocol make a repeated chunk harmless.
The worker (or :func:`run_export`) then drains the queue, contacts first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from ..domain import KIND_ORDER, Kind
from ..ports import BillingReader
from .bulk import BulkStore, bulk_enqueue

log = logging.getLogger(__name__)

ENQUEUE_CHUNK = 1000
EXPORT_REASON = "export"


class ExportStore(BulkStore, Protocol):
    def export_begin(self, kind: Kind) -> object: ...

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None: ...

    def export_finish(self, kind: Kind) -> None: ...


@dataclass
class ExportCounts:
    queued: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in KIND_ORDER})

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def count_ids(billing: BillingReader, kind: Kind) -> int:
    return sum(len(ids) for ids in billing.iter_ids(kind, 0, 10000))


def enqueue_all(store: ExportStore, billing: BillingReader, kinds: Sequence[Kind] = KIND_ORDER,
                on_chunk: Optional[Callable[[Kind, int], None]] = None) -> ExportCounts:
    """Queue every entity of the kinds (resuming an unfinished run); return how many were queued."""
    counts = ExportCounts()
    for kind in kinds:
        progress = store.export_begin(kind)
        after = int(getattr(progress, "last_id", 0))
        for ids in billing.iter_ids(kind, after, ENQUEUE_CHUNK):
            if not ids:
                continue
            with store.transaction():
                bulk_enqueue(store, kind, ids, EXPORT_REASON)
                store.export_advance(kind, ids[-1], len(ids))
            counts.queued[kind] += len(ids)
            if on_chunk:
                on_chunk(kind, len(ids))
        store.export_finish(kind)
        log.info("export: %d %s queued", counts.queued[kind], kind.amo_entity)
    return counts
