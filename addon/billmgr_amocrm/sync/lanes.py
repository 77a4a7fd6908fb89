"""Lanes: where several batches are written at once, and what orders them.

amoCRM answers a write in 0.3-2 s and counts requests by arrival, so one write at a
time would spend most of the allowed 7 requests/s waiting. A pass (:mod:`.passes`)
therefore hands each claimed batch to a lane: a BILLmanager reader and a store on a
MySQL connection of their own (autocommit, so every read sees the latest commit). Up to
``sync.concurrency`` batches are in flight; the rate limiter, shared by every thread and
process of the host, decides when each request may leave. Each batch keeps the protocol
of :mod:`.batch` on its lane: its create intents are committed before its POST, its link
rows with its queue rows.

What orders batches (:class:`Order`). A batch is planned from the links its parents
already have, so it is not planned while a batch it depends on may still add them:

* a company batch waits for contact batches of the same clients (it links the company to
  the contact), and for an earlier company batch that holds a NEWER legal payer of one of
  its clients: the client's main company is its newest legal payer's, which it can only
  tell once that batch's company is linked (an older payer's company does not change
  what it decides);
* a lead batch waits for contact and company batches of the same clients.

A batch that creates entities lets its dependents plan as soon as its link rows are
committed (:meth:`Order.linked`), before its own ``/link`` calls; only a company batch's
``/link`` calls wait for those of earlier company batches of the same clients
(:meth:`Order.wait_to_link`): amoCRM keeps one company per contact and the last link
wins, so they are made in the order the batches were planned. Contacts wait for
nothing and leads never wait for leads. A batch waits only for batches dispatched
before it, each of which holds a lane already (no more batches are dispatched than
there are lanes), so a wait always ends.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import AbstractSet, Callable, Iterator, Mapping, Optional

from ..amocrm.ratelimit import requests_ranked
from ..amocrm.transport import cancelled_when
from ..domain import KIND_ORDER, Kind
from ..errors import Halted
from ..ports import BillingReader, Store

log = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 16
# lanes kept open between passes (each is a MySQL connection)
KEEP_IDLE = 2
# how often a waiting batch looks whether the pass is being stopped (it is also woken at once)
WAIT_POLL = 0.5


@dataclass(frozen=True)
class Lane:
    """A BILLmanager reader and a store on one MySQL connection of their own."""

    billing: BillingReader
    store: Store
    close: Callable[[], None] = lambda: None


class Lanes:
    """At most ``size`` lanes, opened on first use and kept for the next batch and pass."""

    def __init__(self, open_lane: Callable[[], Lane], size: int = DEFAULT_CONCURRENCY) -> None:
        self.size = max(1, int(size))
        self._open = open_lane
        self._idle: list[Lane] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrowed(self) -> Iterator[Lane]:
        with self._lock:
            lane = self._idle.pop() if self._idle else None
        if lane is None:
            lane = self._open()
        try:
            yield lane
        except BaseException:
            # its connection may be in any state: the next batch gets a fresh one
            _close_quietly(lane)
            raise
        with self._lock:
            self._idle.append(lane)

    def trim(self, keep: int = KEEP_IDLE) -> None:
        """After a pass: close idle lanes beyond ``keep`` (a daemon between passes needs few;
        a big pass opens the rest again in milliseconds)."""
        with self._lock:
            surplus, self._idle = self._idle[keep:], self._idle[:keep]
        for lane in surplus:
            _close_quietly(lane)

    def close(self) -> None:
        self.trim(0)


def _close_quietly(lane: Lane) -> None:
    try:
        lane.close()
    except Exception as exc:  # noqa: BLE001 - closing a dead connection must not mask the real error
        log.debug("closing a lane's connection failed: %r", exc)


def waits_for(kind: Kind, earlier: Kind) -> bool:
    """Whether a batch of ``kind`` waits for an earlier batch of ``earlier`` of the same clients."""
    if earlier is kind:
        return kind is Kind.COMPANY
    return KIND_ORDER.index(earlier) < KIND_ORDER.index(kind)


@dataclass
class _Batch:
    kind: Kind
    # the clients (account ids) of the batch's entities, each with the batch's newest entity of
    # it; None until its snapshots are read
    clients: Optional[Mapping[int, int]]
    # its new link rows are committed: batches that depend on it may be planned
    linked: bool = False


class Order:
    """The batches in flight, in dispatch order, and who must wait for whom (module docstring)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._batches: dict[int, _Batch] = {}
        self._next = 0

    def dispatched(self, kind: Kind, billmgr_ids: AbstractSet[int]) -> int:
        """A batch leaves the dispatcher; returns its ticket. A contact's id is its client's."""
        with self._changed:
            ticket = self._next
            self._next += 1
            known = {i: i for i in billmgr_ids} if kind is Kind.CONTACT else None
            self._batches[ticket] = _Batch(kind, known)
            return ticket

    def wait_to_plan(self, ticket: int, clients: Mapping[int, int], halted: Callable[[], bool]) -> None:
        """Publish the clients of batch ``ticket``, then wait until every earlier batch it depends
        on has its links committed; :class:`Halted` if the pass stops meanwhile."""
        with self._changed:
            mine = self._batches[ticket]
            mine.clients = dict(clients)
            self._changed.notify_all()
            self._wait(lambda: self._blocked(ticket, mine, to_link=False), halted)

    def linked(self, ticket: int) -> None:
        """Batch ``ticket``'s new link rows are committed: its dependents may be planned."""
        with self._changed:
            batch = self._batches.get(ticket)
            if batch is not None and not batch.linked:
                batch.linked = True
                self._changed.notify_all()

    def wait_to_link(self, ticket: int, halted: Callable[[], bool]) -> None:
        """Before a company batch's ``/link`` calls: earlier company batches of the same clients
        have made theirs."""
        with self._changed:
            mine = self._batches[ticket]
            if mine.kind is Kind.COMPANY:
                self._wait(lambda: self._blocked(ticket, mine, to_link=True), halted)

    def done(self, ticket: int) -> None:
        """The batch is written (or ended): whoever waits for it may go on."""
        with self._changed:
            self._batches.pop(ticket, None)
            self._changed.notify_all()

    def wake(self) -> None:
        """The pass is stopping: waiting batches look at once."""
        with self._changed:
            self._changed.notify_all()

    def _wait(self, blocked: Callable[[], bool], halted: Callable[[], bool]) -> None:
        while blocked():
            if halted():
                raise Halted("the pass is stopping")
            self._changed.wait(WAIT_POLL)

    def _blocked(self, ticket: int, mine: _Batch, *, to_link: bool) -> bool:
        assert mine.clients is not None
        for other_ticket, other in self._batches.items():
            if other_ticket >= ticket:
                continue
            if to_link:
                if other.kind is not Kind.COMPANY:
                    continue
            elif other.linked or not waits_for(mine.kind, other.kind):
                continue
            if other.clients is None:
                return True
            shared = mine.clients.keys() & other.clients.keys()
            if not shared:
                continue
            if to_link or mine.kind is not Kind.COMPANY or other.kind is not Kind.COMPANY:
                return True
            if any(other.clients[a] > mine.clients[a] for a in shared):
                return True   # it holds a newer legal payer of a client of mine
        return False


class Gate:
    """What one batch tells the :class:`Order` and waits for, from inside its steps.

    ``link_rank`` is where the batch's ``/link`` calls wait for a rate slot
    (:func:`~..amocrm.ratelimit.requests_ranked`; its other requests rank by its ticket).
    A ``/link`` call carries no entity and no batch waits for it (dependents are planned
    once the link rows are committed, before the calls), so it gives its turn to the
    entity writes of the batches dispatched up to one set of lanes after its own. That
    matters where companies hand over to leads: a client's services are spread over the
    whole queue, so every lead batch waits for every company batch in flight; the last
    company writes now leave first and the ``/link`` calls fill the wait for their
    answers, where before the leads waited behind both."""

    def __init__(self, order: Order, ticket: int, halted: Callable[[], bool], link_rank: float) -> None:
        self.order = order
        self.ticket = ticket
        self.halted = halted
        self.link_rank = link_rank

    def plan_after(self, clients: Mapping[int, int]) -> None:
        self.order.wait_to_plan(self.ticket, clients, self.halted)

    def linked(self) -> None:
        self.order.linked(self.ticket)

    @contextmanager
    def linking(self) -> Iterator[None]:
        self.order.wait_to_link(self.ticket, self.halted)
        with requests_ranked(self.link_rank):
            yield


class HaltingAmo:
    """The amoCRM client as a batch sees it: once the pass is stopping (one batch met an
    outage or a refused token) the others send nothing more. Each call checks first, and
    the transport checks again once the request has its rate slot (a request can wait a
    second for one). What was sent stays recorded; the rest stays queued, and an intent
    whose create was not sent is settled by its marker like a lost answer."""

    def __init__(self, amo: object, halted: Callable[[], bool]) -> None:
        self._amo = amo
        self._halted = halted

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._amo, name)
        if not callable(attr):
            return attr
        halted = self._halted

        def call(*args: object, **kwargs: object) -> object:
            if halted():
                raise Halted("the pass is stopping")
            with cancelled_when(halted):
                return attr(*args, **kwargs)

        return call
