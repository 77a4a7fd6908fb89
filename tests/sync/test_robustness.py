"""Lost answers against MariaDB and the emulator: a slow write is never created twice, and an
outage costs a pass a couple of requests instead of one per batch of the queue."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from billmgr_amocrm.bootstrap import build_amo_client
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.engine import Engine
from billmgr_amocrm.sync.outcomes import OUTAGE_STRIKES
from billmgr_amocrm.sync.retry import RetryPolicy

DEADLINE = 60.0
NO_DELAY = RetryPolicy(base_seconds=0.0, cap_seconds=0.0)


def accounts(rig: Any, count: int) -> list[int]:
    return [int(r[0]) for r in rig.sandbox.query("SELECT id FROM account ORDER BY id LIMIT %s", (count,))]


def drain(engine: Engine, rig: Any) -> None:
    """Passes until the queue is empty (rows wait for their own due time; nothing is forced)."""
    deadline = time.monotonic() + DEADLINE
    while rig.app.store.queue_stats().depth:
        assert time.monotonic() < deadline, "the queue did not drain"
        report = engine.run_pass()
        assert report.failed == 0, report.failures
        time.sleep(0.1)


def test_a_create_still_in_flight_is_not_created_twice_even_with_a_zero_retry_delay(rig):
    """The POST's answer times out (client read timeout 0.5 s) while amoCRM takes 1.5 s to write
    it. The retry delay is zero, so only settle_after keeps the marker lookup from running
    before the write lands (which would miss it and POST the batch again)."""
    control = rig.emulator.control
    ids = accounts(rig, 3)
    app = rig.app
    app.ensure_marker_fields()
    amo = build_amo_client(app.paths, rate=7.0, timeout=(5.0, 0.5), chunk_size=50)
    engine = Engine(amo, app.billing, app.store, app.rules, app.context(), policy=NO_DELAY, settle_after=2.5)
    try:
        control.add_fault(action="delay", path="^/api/v4/contacts$", method="POST", delay=1.5, count=1)
        with app.store.transaction():
            for account in ids:
                app.store.enqueue(Kind.CONTACT, account, "edit")
        first = engine.run_pass()
        assert first.done == 0 and first.retried == len(ids)   # the answer was lost: nothing linked yet
        drain(engine, rig)
    finally:
        amo.close()
    counts = rig.marker_counts("contacts")
    assert sorted(counts) == sorted(f"billmgr:contact:{a}" for a in ids)
    assert set(counts.values()) == {1}                          # no duplicate
    posts = [r for r in control.requests() if (r["method"], r["path"]) == ("POST", "/api/v4/contacts")]
    assert len(posts) == 1                                      # adopted by the marker, never re-sent
    assert sorted(rig.all_links(Kind.CONTACT)) == sorted(ids)


def test_a_503_outage_on_updates_costs_a_pass_the_writes_in_flight_not_one_per_batch(rig):
    """One batch at a time: OUTAGE_STRIKES requests. With lanes: the writes in flight when the
    outage began (at most one per lane), then nothing more: fewer than the batches queued."""
    rig.sync()                                                  # the export: everything is linked
    control = rig.emulator.control
    linked = sorted(rig.all_links(Kind.CONTACT))
    assert len(linked) >= 24
    app = rig.app
    lanes = app.lanes()
    assert lanes is not None and lanes.size < len(linked)
    for lanes_in_use in (None, lanes):
        engine = Engine(app.amo(1), app.billing, app.store, app.rules, app.context(), batch_size=1,
                        lanes=lanes_in_use)                      # a batch per contact
        with app.store.transaction():
            for account in linked:
                app.store.enqueue(Kind.CONTACT, account, "edit")
        control.add_fault(action="status", path="^/api/v4/contacts$", method="PATCH", status=503)
        for _ in range(2):
            seq = rig.request_seq()
            report = engine.run_pass()
            patches = rig.requests_since(seq, "PATCH", "/api/v4/contacts")
            assert report.stopped == "retry_later" and report.failed == 0
            if lanes_in_use is None:
                assert len(patches) == OUTAGE_STRIKES
            else:
                assert OUTAGE_STRIKES <= len(patches) <= lanes.size
            status = app.store.queue_stats()
            assert status.pending[Kind.CONTACT] == len(linked) and status.failed_total == 0
            rig.make_due()
        control.clear_faults()
        report = engine.run_pass()
        assert report.stopped is None and report.done == len(linked)
        assert app.store.queue_stats().depth == 0


def test_an_unanswered_create_waits_settle_after_before_its_marker_lookup():
    """With the fakes and a clock the test moves: no lookup (and no POST) before settle_after."""
    from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context, utcnow

    billing, amo, store = FakeBilling(), FakeAmo(), FakeStore()
    billing.clients_[1] = client(1)
    store.enqueue(Kind.CONTACT, 1, "edit")
    now = [utcnow() + timedelta(seconds=1)]
    engine = Engine(amo, billing, store, FakeRules(), context(), policy=NO_DELAY, settle_after=60.0,
                    clock=lambda: now[0])
    amo.lose_next_create_response = 1
    engine.run_pass()
    assert [c[0] for c in amo.calls] == ["POST"] and not store.link_rows[Kind.CONTACT]
    store.make_due()
    now[0] += timedelta(seconds=30)
    engine.run_pass()
    assert [c[0] for c in amo.calls] == ["POST"]               # too early: not even a lookup
    store.make_due()
    now[0] += timedelta(seconds=31)
    report = engine.run_pass()
    assert report.adopted == 1 and [c[0] for c in amo.calls] == ["POST", "GET", "PATCH"]  # lookup, refresh
    assert len(amo.entities["contacts"]) == 1 and not store.queue
