"""The export queues on a thread of its own while the engine already sends (sync.export.Enqueuer).

The queueing is gated on amoCRM calls, so the order of events is forced, not timed:
a drain must start sending before the rest is queued, and must not leave a kind
before every row of it is queued (else leads would be deferred to contacts that
were not queued yet).
"""

from __future__ import annotations

import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Iterator, Optional, Sequence

import pytest

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.ports import QueueItem
from billmgr_amocrm.sync import export
from billmgr_amocrm.sync.engine import Engine
from billmgr_amocrm.sync.export import Enqueuer
from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context, service

GATE_SECONDS = 10.0   # a deadlock guard only: the gate opens on an event, never on time


class _SharedStore(FakeStore):
    """FakeStore used by two threads (the engine and the queueing), with MySqlStore's export cursor."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self.progress: dict[Kind, Any] = {}

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        with self.lock:
            super().enqueue_many(kind, billmgr_ids, reason)

    def claim_after(self, kind: Kind, limit: int, now: datetime,
                    after: Optional[QueueItem]) -> list[QueueItem]:
        with self.lock:
            return super().claim_after(kind, limit, now, after)

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        with self.lock:
            super().complete_many(items)

    def export_begin(self, kind: Kind) -> Any:
        self.progress.setdefault(kind, SimpleNamespace(last_id=0, enqueued=0, finished=False))
        return self.progress[kind]

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        self.progress[kind].last_id = last_id
        self.progress[kind].enqueued += enqueued

    def export_finish(self, kind: Kind) -> None:
        self.progress[kind].finished = True


class _GatedBilling(FakeBilling):
    """Every contact chunk after the first waits until amoCRM got a request."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()
        self.sent_while_queueing = False

    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        for n, ids in enumerate(super().iter_ids(kind, after_id, batch)):
            if kind is Kind.CONTACT and n == 1:
                self.sent_while_queueing = self.sending.wait(GATE_SECONDS)
            yield ids


class _SignallingAmo(FakeAmo):
    billing: Optional[_GatedBilling] = None

    def create(self, entity: str, items: Sequence[dict[str, Any]]) -> Any:
        assert self.billing is not None
        self.billing.sending.set()
        return super().create(entity, items)


def _site(clients: int) -> tuple[Engine, _SignallingAmo, _GatedBilling, _SharedStore]:
    billing = _GatedBilling()
    for i in range(1, clients + 1):
        billing.clients_[i] = client(i)
        billing.services_[100 + i] = service(100 + i, account=i)
    amo, store = _SignallingAmo(), _SharedStore()
    amo.billing = billing
    engine = Engine(amo, billing, store, FakeRules(), context(), batch_size=2, jitter=lambda: 0.0,
                    settle_after=0)
    return engine, amo, billing, store


def test_sending_starts_before_queueing_ends_and_no_kind_is_left_early(monkeypatch):
    monkeypatch.setattr(export, "ENQUEUE_CHUNK", 3)
    monkeypatch.setattr(export, "FIRST_CHUNK", 3)
    engine, amo, billing, store = _site(10)
    enqueuer = Enqueuer(store, billing).start()
    engine.feed = enqueuer
    report = engine.run_pass()
    counts = enqueuer.finish()

    assert billing.sent_while_queueing   # the first contacts went out before chunk 2 was queued
    assert counts.queued == {Kind.CONTACT: 10, Kind.COMPANY: 0, Kind.LEAD: 10}
    assert report.done == 20 and report.deferred == 0 and report.failed == 0 and not store.queue
    posted = [entity for method, entity, _ in amo.calls if method == "POST"]
    # every contact (all chunks) before the first lead: the contacts' drain waited for the queueing
    assert posted == ["contacts"] * posted.count("contacts") + ["leads"] * posted.count("leads")
    for kind, entity in ((Kind.CONTACT, "contacts"), (Kind.LEAD, "leads")):
        assert len(store.link_rows[kind]) == 10 == len(amo.entities[entity])


def test_a_queueing_failure_ends_the_drain_and_is_raised(monkeypatch):
    monkeypatch.setattr(export, "ENQUEUE_CHUNK", 3)
    monkeypatch.setattr(export, "FIRST_CHUNK", 3)
    engine, amo, billing, store = _site(6)

    def broken(kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        if max(billmgr_ids) > 3:
            raise ConnectionError("MySQL went away")
        _SharedStore.enqueue_many(store, kind, billmgr_ids, reason)

    store.enqueue_many = broken  # type: ignore[method-assign]
    enqueuer = Enqueuer(store, billing).start()
    engine.feed = enqueuer
    report = engine.run_pass()   # returns: the failed queueing seals every kind
    with pytest.raises(ConnectionError):
        enqueuer.finish()
    # what was queued before the failure went out; the cursor says where a re-run resumes
    assert report.failed == 0 and store.progress[Kind.CONTACT].last_id == 3
    assert sorted(store.link_rows[Kind.CONTACT]) == [1, 2, 3]
