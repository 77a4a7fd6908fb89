"""Initial export (and "resync all"): every BILLmanager entity goes through the queue.

Ids are streamed from ``BillingReader.iter_ids`` (keyset pagination) and queued
per chunk in one transaction together with the persisted cursor
(``export_advance``), so a crash resumes where it stopped; the queue's
coalescing and the exactly-once create protocol make a repeated chunk harmless.
The worker (or :func:`run_export`) then drains the queue, contacts first.

:class:`Enqueuer` runs the same queueing on a thread (and a connection) of its own, so
``run_export`` starts sending the first contacts while the rest is still being queued:
the rate limiter leaves the process idle most of the time, and queueing 50,000 ids
takes about a second. Its ``wait`` tells a drain that more rows of a kind may still
come, so a drain of contacts ends only once every contact is queued.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

from ..domain import KIND_ORDER, Kind
from ..ports import BillingReader, Store

log = logging.getLogger(__name__)

ENQUEUE_CHUNK = 1000
# the first chunk of a kind when sending waits for it (Enqueuer): one export batch, queued sooner
FIRST_CHUNK = 250
EXPORT_REASON = "export"


@dataclass
class ExportCounts:
    queued: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in KIND_ORDER})

    @property
    def total(self) -> int:
        return sum(self.queued.values())


def enqueue_all(store: Store, billing: BillingReader, kinds: Sequence[Kind] = KIND_ORDER,
                on_chunk: Optional[Callable[[Kind, int], None]] = None,
                on_kind: Optional[Callable[[Kind], None]] = None, first_chunk: int = 0) -> ExportCounts:
    """Queue every entity of the kinds (resuming an unfinished run); return how many were queued."""
    counts = ExportCounts()
    for kind in kinds:
        progress = store.export_begin(kind)
        after = int(getattr(progress, "last_id", 0))
        for ids in _id_chunks(billing, kind, after, first_chunk):
            if not ids:
                continue
            with store.transaction():
                store.enqueue_many(kind, ids, EXPORT_REASON)
                store.export_advance(kind, ids[-1], len(ids))
            counts.queued[kind] += len(ids)
            if on_chunk:
                on_chunk(kind, len(ids))
        store.export_finish(kind)
        log.info("export: %d %s queued", counts.queued[kind], kind.amo_entity)
        if on_kind:
            on_kind(kind)
    return counts


def _id_chunks(billing: BillingReader, kind: Kind, after: int, first_chunk: int) -> Iterator[list[int]]:
    """Ids past ``after`` in chunks of ENQUEUE_CHUNK; with ``first_chunk``, a smaller first one."""
    if first_chunk > 0:
        first = next((ids for ids in billing.iter_ids(kind, after, first_chunk) if ids), [])
        if not first:
            return
        yield first
        after = first[-1]
    yield from billing.iter_ids(kind, after, ENQUEUE_CHUNK)


class Enqueuer:
    """``enqueue_all`` on a thread of its own while a drain sends what is queued already.

    ``store`` and ``billing`` must be on a connection of their own. Every chunk is
    committed with its cursor exactly as in ``enqueue_all``, so a crash resumes the same
    way. A drain asks :meth:`mark` before its claim query and, if the query found
    nothing, :meth:`wait` whether more may come (a chunk committed since the mark, or the
    kind is not fully queued yet)."""

    POLL_SECONDS = 0.5

    def __init__(self, store: Store, billing: BillingReader, kinds: Sequence[Kind] = KIND_ORDER,
                 on_chunk: Optional[Callable[[Kind, int], None]] = None,
                 on_done: Optional[Callable[[], None]] = None) -> None:
        self._on_chunk = on_chunk
        self._on_done = on_done
        self._store = store
        self._billing = billing
        self._kinds = tuple(kinds)
        self._changed = threading.Condition()
        self._chunks = {k: 0 for k in Kind}
        self._sealed: set[Kind] = set()
        self._error: Optional[BaseException] = None
        self.counts = ExportCounts()
        self._thread = threading.Thread(target=self._run, name="amocrm-export-enqueue", daemon=True)

    def start(self) -> Enqueuer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.counts = enqueue_all(self._store, self._billing, self._kinds,
                                      on_chunk=self._chunk, on_kind=self._seal, first_chunk=FIRST_CHUNK)
            if self._on_done is not None:
                self._on_done()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by finish()
            self._error = exc
        finally:
            with self._changed:
                self._sealed.update(Kind)
                self._changed.notify_all()

    def _chunk(self, kind: Kind, count: int) -> None:
        if self._on_chunk is not None:
            self._on_chunk(kind, count)
        with self._changed:
            self._chunks[kind] += 1
            self._changed.notify_all()

    def _seal(self, kind: Kind) -> None:
        with self._changed:
            self._sealed.add(kind)
            self._changed.notify_all()

    def mark(self, kind: Kind) -> int:
        """Chunks of ``kind`` committed so far; take it before the claim query."""
        with self._changed:
            return self._chunks[kind]

    def wait(self, kind: Kind, mark: int, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """After a claim found nothing: True once more rows of ``kind`` were committed since
        ``mark`` (claim again), False when none will come (the kind is fully queued)."""
        with self._changed:
            while True:
                if self._chunks[kind] > mark:
                    return True
                if kind in self._sealed or should_stop():
                    return False
                self._changed.wait(self.POLL_SECONDS)

    def finish(self) -> ExportCounts:
        """Wait for the queueing to end; re-raise its error (what it queued stays queued)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.counts
