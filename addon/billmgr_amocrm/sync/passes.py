"""The pass loop: drain every due queue row, kinds in order, until nothing is due.

Contacts go first, then companies, then leads: a child whose contact is not linked
defers and queues the contact, and the pass starts over with contacts. Rows are
claimed several batches per query with a keyset (:class:`Claims`); with a reader the
next batch is read and planned while the current one is written (:mod:`.pipeline`).
With a :class:`Feed` (the export's ``Enqueuer``) sending starts while the rest is still
being queued: a drain of a kind ends only once every row of that kind is queued.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from ..domain import KIND_ORDER, Kind
from ..ports import QueueItem
from .outcomes import PassState, PassStopped, Report
from .pipeline import Prepared, settle_quietly
from .planner import Work

if TYPE_CHECKING:
    from .engine import Engine

# batches claimed per queue query in a drain (the query costs the same for 1 or 4 batches)
CLAIM_WINDOW = 4


class Feed(Protocol):
    """Rows still being queued while the engine drains (``export.Enqueuer``)."""

    def mark(self, kind: Kind) -> int: ...

    def wait(self, kind: Kind, mark: int, should_stop: Callable[[], bool] = ...) -> bool: ...


class Claims:
    """Due rows of one kind for one drain, in queue order, ``CLAIM_WINDOW`` batches per query.

    A keyset (``claim_after``) continues past what was handed out, so the batch in flight
    (still pending until it ends) is never read again."""

    def __init__(self, engine: Engine, kind: Kind) -> None:
        self.engine = engine
        self.kind = kind
        self.store = engine.claim_store()
        self.buffer: list[QueueItem] = []
        self.after: Optional[QueueItem] = None

    def next(self) -> list[QueueItem]:
        size = self.engine.batch_size
        feed = self.engine.feed
        while not self.buffer:
            mark = feed.mark(self.kind) if feed is not None else 0
            self.buffer = self.store.claim_after(self.kind, size * CLAIM_WINDOW, self.engine.clock(),
                                                 self.after)
            if self.buffer:
                self.after = self.buffer[-1]
            elif feed is None or not feed.wait(self.kind, mark, self.engine.should_stop):
                break
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        return batch


def run_pass(engine: Engine, max_rounds: int = 1000) -> Report:
    """Drain every due queue row, kinds in order, until nothing is due or amoCRM says stop."""
    report = Report()
    engine.state = PassState()
    try:
        for _ in range(max_rounds):
            if engine.should_stop():
                break
            progressed = False
            for kind in KIND_ORDER:
                with engine.write_behind.running():
                    claimed, deferred = _drain(engine, kind, report)
                progressed = progressed or claimed
                if deferred:
                    break  # their contacts were queued: start over with contacts
            if not progressed:
                break
    except PassStopped as stop:
        report.stopped = stop.state
        report.stop_reason = str(stop.cause)
    return report


def _claim_and_prepare(engine: Engine, claims: Claims, kind: Kind) -> Optional[Prepared]:
    """The read-ahead: the next batch, read and planned (None: nothing more is due)."""
    assert engine.reader is not None
    more = claims.next()
    if not more:
        return None
    return engine.prepare(kind, [Work.of(i) for i in more], engine.reader.billing, engine.reader.store)


def _drain(engine: Engine, kind: Kind, report: Report) -> tuple[bool, bool]:
    """Batches of one kind until none is due: (anything claimed, children deferred)."""
    claimed = False
    prepared: Optional[Prepared] = None
    claims = Claims(engine, kind)
    with ThreadPoolExecutor(max_workers=1) if engine.reader else nullcontext() as pool:
        while not engine.should_stop():
            if prepared is None:
                items = claims.next()
                if not items:
                    return claimed, False
                prepared = engine.prepare(kind, [Work.of(i) for i in items], engine.billing, engine.store)
            claimed = True
            ahead: Optional[Future[Optional[Prepared]]] = None
            if pool is not None:
                ahead = pool.submit(_claim_and_prepare, engine, claims, kind)
            try:
                batch = engine.apply(prepared)
            except BaseException:
                settle_quietly(ahead)
                raise
            report.add(batch)
            if engine.on_batch is not None:
                engine.on_batch(kind, batch)
            engine.heartbeat()
            if batch.deferred:
                settle_quietly(ahead)   # its rows stay queued; the pass starts over with contacts
                return claimed, True
            prepared = ahead.result() if ahead is not None else None
    return claimed, False
