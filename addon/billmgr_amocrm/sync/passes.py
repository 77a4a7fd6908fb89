"""The pass loop: drain every due queue row, kinds in order, until nothing is due.

Contacts go first, then companies, then leads. Rows are claimed several batches per
query with a keyset (:class:`Claims`) and each batch is handed to a lane
(:mod:`.lanes`): up to ``engine.concurrency`` batches are in flight, so one batch's
answer time overlaps the next ones' requests; a batch waits only for the batches of the
same clients it depends on (:class:`.lanes.Order`). The companies of a round are claimed
as soon as every contact is claimed, while the last contact batches are still in flight.

A child whose contact is not linked and not coming defers and queues the contact: no
more is claimed, the batches in flight end, and the pass starts over with contacts.
When amoCRM cannot be used (an outage, a refused token, a lost lease), the batches in
flight send nothing more and the pass ends. With a :class:`Feed` (the export's
``Enqueuer``) sending starts while the rest is still being queued: a drain of a kind
ends only once every row of that kind is queued.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Callable, Optional, Protocol

from ..amocrm.ratelimit import requests_ranked
from ..domain import KIND_ORDER, Kind
from ..ports import QueueItem
from .lanes import Gate, Order
from .outcomes import PassStopped, Report
from .planner import Work

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

# batches claimed per queue query in a drain (the query costs the same for 1 or 4 batches)
CLAIM_WINDOW = 4
# a dispatcher waiting for a lane still renews the lease and this host's rate share
COLLECT_POLL = 1.0


class Feed(Protocol):
    """Rows still being queued while the engine drains (``export.Enqueuer``)."""

    def mark(self, kind: Kind) -> int: ...

    def wait(self, kind: Kind, mark: int, should_stop: Callable[[], bool] = ...) -> bool: ...


class Claims:
    """Due rows of one kind for one drain, in queue order, ``CLAIM_WINDOW`` batches per query.

    A keyset (``claim_after``) continues past what was handed out, so a batch in flight
    (still pending until it ends) is never read again."""

    def __init__(self, engine: Engine, kind: Kind, should_stop: Callable[[], bool]) -> None:
        self.engine = engine
        self.kind = kind
        self.should_stop = should_stop
        self.buffer: list[QueueItem] = []
        self.after: Optional[QueueItem] = None

    def next(self) -> list[QueueItem]:
        size = self.engine.batch_size
        feed = self.engine.feed
        while not self.buffer:
            mark = feed.mark(self.kind) if feed is not None else 0
            self.buffer = self.engine.store.claim_after(self.kind, size * CLAIM_WINDOW, self.engine.clock(),
                                                        self.after)
            if self.buffer:
                self.after = self.buffer[-1]
            elif feed is None or not feed.wait(self.kind, mark, self.should_stop):
                break
        batch, self.buffer = self.buffer[:size], self.buffer[size:]
        return batch


class Flight:
    """The batches of one pass in flight: dispatched to lanes, collected as they land."""

    def __init__(self, engine: Engine, report: Report) -> None:
        self.engine = engine
        self.report = report
        self.order = Order()
        self.pool = (ThreadPoolExecutor(max_workers=engine.concurrency, thread_name_prefix="amocrm-lane")
                     if engine.lanes is not None else None)
        self.running: dict[Future[Report], Kind] = {}
        self.stop: Optional[PassStopped] = None
        self.error: Optional[BaseException] = None
        # a batch deferred children for their contacts: the round ends, the next starts with contacts
        self.deferred = False

    @property
    def halting(self) -> bool:
        """Nothing more is claimed in this round (a refusal to look at ends it too)."""
        return (self.deferred or self.stop is not None or self.error is not None
                or self.engine.state.has_suspects)

    def should_stop(self) -> bool:
        """For waits between claims: land what has landed, and say whether to stop claiming."""
        self.collect(block=False)
        return self.halting or self.engine.should_stop()

    def dispatch(self, kind: Kind, works: list[Work]) -> None:
        """Write a batch: inline without lanes, else on a free lane (waiting for one if all are busy)."""
        ticket = self.order.dispatched(kind, {w.billmgr_id for w in works})
        if self.pool is None:
            try:
                outcome: Future[Report] = Future()
                try:
                    outcome.set_result(self.engine.write_batch(self.engine.own_lane, kind, works))
                except BaseException as exc:  # noqa: BLE001 - landed like a lane's
                    outcome.set_exception(exc)
            finally:
                self.order.done(ticket)
            self._landed(kind, outcome)
            return
        self.running[self.pool.submit(self._in_lane, ticket, kind, works)] = kind
        while len(self.running) >= self.engine.concurrency:
            self.collect(block=True)

    def _in_lane(self, ticket: int, kind: Kind, works: list[Work]) -> Report:
        assert self.engine.lanes is not None
        # its requests take rate slots in dispatch order: later batches may wait for this one
        gate = Gate(self.order, ticket, self.engine.halt.is_set,
                    link_rank=ticket + self.engine.concurrency)
        try:
            with self.engine.lanes.borrowed() as lane, requests_ranked(ticket):
                return self.engine.write_batch(lane, kind, works, gate)
        finally:
            self.order.done(ticket)

    def collect(self, *, block: bool) -> None:
        """Land the batches that ended (one at least when ``block``)."""
        if not self.running:
            return
        done, _ = wait(list(self.running), timeout=COLLECT_POLL if block else 0,
                       return_when=FIRST_COMPLETED)
        for future in done:
            self._landed(self.running.pop(future), future)
        if block and not done:
            self._heartbeat()

    def land(self) -> None:
        """Wait for every batch in flight; then raise what stopped the pass, if anything did."""
        while self.running:
            self.collect(block=True)
        if self.error is not None:
            raise self.error
        if self.stop is not None:
            raise self.stop

    def close(self) -> None:
        """After an error in the dispatcher itself: stop the lanes and wait for them."""
        if self.running:
            self._halt()
            while self.running:
                done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                for future in done:
                    self.running.pop(future)
                    if not future.cancelled() and future.exception() is not None:
                        log.debug("a batch in flight ended with", exc_info=future.exception())
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        if self.engine.lanes is not None:
            self.engine.lanes.trim()

    def _landed(self, kind: Kind, future: Future[Report]) -> None:
        try:
            batch = future.result()
        except PassStopped as stop:
            # the first real stop is the pass's; "halted" only says another batch stopped it
            if stop.state != "halted" and self.stop is None:
                self.stop = stop
            self._halt()
            return
        except BaseException as exc:  # noqa: BLE001 - raised by land() once the others are in
            if self.error is None:
                self.error = exc
            self._halt()
            return
        self.report.add(batch)
        # the day's counts for the panel's report: one small write per batch, on the
        # dispatcher's own connection (the lanes' units of work stay as they are)
        self.engine.store.count_daily({kind.value: batch.done, "failed": batch.failed}, self.engine.clock())
        if self.engine.on_batch is not None:
            self.engine.on_batch(kind, batch)
        if batch.deferred:
            self.deferred = True   # its rows stay queued; the pass starts over with contacts
        self._heartbeat()

    def _heartbeat(self) -> None:
        try:
            self.engine.heartbeat()
        except PassStopped as stop:
            if self.stop is None:
                self.stop = stop
            self._halt()

    def _halt(self) -> None:
        self.engine.halt.set()
        self.order.wake()


def run_pass(engine: Engine, max_rounds: int = 1000) -> Report:
    """Drain every due queue row, kinds in order, until nothing is due or amoCRM says stop."""
    report = Report()
    flight = Flight(engine, report)
    try:
        report.adopted += engine.adopt()
        for _ in range(max_rounds):
            if engine.should_stop():
                break
            progressed = False
            for kind in KIND_ORDER:
                progressed = _drain(engine, flight, kind) or progressed
                if flight.halting:
                    break
            flight.land()
            if engine.state.has_suspects:
                engine.look_at_refusals()   # then the held records go again, contacts first
                flight.deferred = False
                continue
            if flight.deferred:
                flight.deferred = False   # their contacts were queued: start over with contacts
                continue
            if not progressed:
                break
    except PassStopped as stop:
        report.stopped = stop.state
        report.stop_reason = str(stop.cause)
    finally:
        flight.close()
    return report


def _drain(engine: Engine, flight: Flight, kind: Kind) -> bool:
    """Dispatch batches of one kind until none is due; whether anything was claimed."""
    claimed = False
    claims = Claims(engine, kind, flight.should_stop)
    while not flight.should_stop():
        items = claims.next()
        if not items:
            break
        claimed = True
        flight.dispatch(kind, [Work.of(i) for i in items])
    return claimed
