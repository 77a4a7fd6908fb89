"""The durable queue: coalescing, claim/complete, backoff, dead letters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.store import MySqlStore

from .conftest import FakeClock


def row(store: MySqlStore, kind: Kind, billmgr_id: int) -> dict:
    with store._conn.cursor() as cur:
        cur.execute("SELECT reason, version, state, attempts, next_attempt_at, first_queued_at, last_error "
                    "FROM amocrm_queue WHERE kind = %s AND billmgr_id = %s", (kind.value, billmgr_id))
        found = cur.fetchone()
    store._conn.commit()
    if found is None:
        return {}
    keys = ("reason", "version", "state", "attempts", "next_attempt_at", "first_queued_at", "last_error")
    return dict(zip(keys, found))


def test_ten_edits_coalesce_into_one_row_with_version_ten(store: MySqlStore, clock: FakeClock) -> None:
    first = clock.now
    for _ in range(10):
        store.enqueue(Kind.CONTACT, 5, "edit")
        clock.advance(1)
    store.enqueue(Kind.LEAD, 5, "open")   # same id, other kind: its own row
    state = row(store, Kind.CONTACT, 5)
    assert state["version"] == 10 and state["state"] == "pending"
    assert state["first_queued_at"] == first.replace(tzinfo=None)      # keeps its age
    assert state["next_attempt_at"] == clock.now.replace(tzinfo=None) - timedelta(seconds=1)
    assert store.queue_stats().pending == {Kind.CONTACT: 1, Kind.COMPANY: 0, Kind.LEAD: 1}


@pytest.mark.parametrize(("reasons", "kept"), [
    (["open", "edit", "reconcile"], "open"),
    (["open", "prolong"], "open"),
    (["edit", "prolong", "export"], "prolong"),
    (["prolong", "open"], "open"),
    (["export", "edit"], "edit"),
    (["edit", "reconcile"], "reconcile"),
], ids=lambda v: "-".join(v) if isinstance(v, list) else v)
def test_service_events_outrank_generic_reasons(store: MySqlStore, reasons: list, kept: str) -> None:
    for reason in reasons:
        store.enqueue(Kind.LEAD, 9, reason)
    assert row(store, Kind.LEAD, 9)["reason"] == kept


def test_claim_returns_due_rows_of_a_kind_oldest_first(store: MySqlStore, clock: FakeClock) -> None:
    for billmgr_id in (30, 10, 20):
        store.enqueue(Kind.CONTACT, billmgr_id, "edit")
        clock.advance(1)
    store.enqueue(Kind.COMPANY, 1, "edit")
    claimed = store.claim_after(Kind.CONTACT, 10, clock.now, None)
    assert [i.billmgr_id for i in claimed] == [30, 10, 20]
    assert [i.billmgr_id for i in store.claim_after(Kind.CONTACT, 2, clock.now, None)] == [30, 10]
    # Not due yet for a caller whose clock is behind the enqueue.
    assert store.claim_after(Kind.CONTACT, 10, clock.now - timedelta(hours=1), None) == []
    item = claimed[0]
    assert (item.kind, item.reason, item.version, item.attempts) == (Kind.CONTACT, "edit", 1, 0)


def test_complete_keeps_a_row_that_got_a_newer_event(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.LEAD, 1, "open")
    store.enqueue(Kind.LEAD, 2, "open")
    one, two = store.claim_after(Kind.LEAD, 10, clock.now, None)
    store.retry(one, "502", 0)                  # an earlier failed try is forgotten on success
    store.enqueue(Kind.LEAD, 1, "edit")         # arrives while the worker is busy with item 1
    store.complete_many([one])
    store.complete_many([two])
    left = store.claim_after(Kind.LEAD, 10, clock.now, None)
    assert [(i.billmgr_id, i.version, i.attempts, i.reason) for i in left] == [(1, 2, 0, "open")]
    store.complete_many([left[0]])
    assert store.claim_after(Kind.LEAD, 10, clock.now, None) == []
    assert store.queue_stats().depth == 0


def test_complete_many_matches_each_row_by_its_own_version(store: MySqlStore, clock: FakeClock) -> None:
    """One statement completes rows claimed at different versions; a row that got a newer
    event after its claim stays, whatever version its batch-mates had."""
    for billmgr_id in (1, 2, 3, 4):
        store.enqueue(Kind.LEAD, billmgr_id, "open")
    store.enqueue(Kind.LEAD, 3, "edit")                      # claimed at version 2
    store.enqueue(Kind.LEAD, 4, "edit")
    store.enqueue(Kind.LEAD, 4, "edit")                      # claimed at version 3
    claimed = store.claim_after(Kind.LEAD, 10, clock.now, None)
    assert sorted((i.billmgr_id, i.version) for i in claimed) == [(1, 1), (2, 1), (3, 2), (4, 3)]
    store.enqueue(Kind.LEAD, 2, "edit")                      # newer than its claim (version 1)
    store.enqueue(Kind.LEAD, 3, "edit")                      # newer than its claim (version 2)
    store.complete_many(claimed)
    left = store.claim_after(Kind.LEAD, 10, clock.now, None)
    assert sorted((i.billmgr_id, i.version) for i in left) == [(2, 2), (3, 3)]


def test_retry_backs_off_and_a_new_event_makes_it_due_now(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.COMPANY, 4, "edit")
    (item,) = store.claim_after(Kind.COMPANY, 1, clock.now, None)
    store.retry(item, "amoCRM answered 503", 120)
    assert store.claim_after(Kind.COMPANY, 1, clock.advance(119), None) == []
    (again,) = store.claim_after(Kind.COMPANY, 1, clock.advance(1), None)
    assert again.attempts == 1
    assert row(store, Kind.COMPANY, 4)["last_error"] == "amoCRM answered 503"
    store.retry(again, "timeout", 600)
    store.enqueue(Kind.COMPANY, 4, "edit")
    (due,) = store.claim_after(Kind.COMPANY, 1, clock.now, None)
    assert due.attempts == 2 and due.version == 2


def test_fail_dead_letters_until_retried(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.LEAD, 1, "open")
    store.enqueue(Kind.LEAD, 2, "open")
    store.enqueue(Kind.CONTACT, 3, "edit")
    lead1, lead2 = store.claim_after(Kind.LEAD, 10, clock.now, None)
    (contact,) = store.claim_after(Kind.CONTACT, 10, clock.now, None)
    store.fail(lead1, "400: price is not a number")
    store.fail(contact, "400: bad email")
    store.enqueue(Kind.LEAD, 2, "edit")         # newer data may fix it: stays pending
    store.fail(lead2, "400: something")
    assert [i.billmgr_id for i in store.claim_after(Kind.LEAD, 10, clock.now, None)] == [2]
    stats = store.queue_stats()
    assert stats.failed == {Kind.CONTACT: 1, Kind.COMPANY: 0, Kind.LEAD: 1} and stats.failed_total == 2
    assert stats.oldest_pending_at == clock.now and stats.oldest_pending_age(clock.advance(30)) == 30
    failed = store.failed()
    assert {(f.kind, f.billmgr_id, f.last_error) for f in failed} == {
        (Kind.LEAD, 1, "400: price is not a number"), (Kind.CONTACT, 3, "400: bad email")}
    assert [f.billmgr_id for f in store.failed(Kind.CONTACT)] == [3]
    assert len(store.failed(limit=1)) == 1 and len(store.failed(limit=1, offset=1)) == 1
    assert store.retry_failed(Kind.CONTACT) == 1
    assert store.retry_failed(ids=[]) == 0
    lead_row_id = store.failed(Kind.LEAD)[0].id
    assert store.retry_failed(ids=[lead_row_id]) == 1
    revived = {i.billmgr_id: i for i in store.claim_after(Kind.LEAD, 10, clock.now, None)}
    assert revived[1].attempts == 0 and revived[1].reason == "open"
    assert store.queue_stats().failed_total == 0


def test_a_new_event_revives_a_failed_row(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.CONTACT, 8, "edit")
    (item,) = store.claim_after(Kind.CONTACT, 1, clock.now, None)
    store.fail(item, "400")
    clock.advance(3600)
    store.enqueue(Kind.CONTACT, 8, "edit")
    state = row(store, Kind.CONTACT, 8)
    assert (state["state"], state["attempts"]) == ("pending", 0)
    assert state["first_queued_at"] == clock.now.replace(tzinfo=None)


def test_retry_and_fail_keep_errors_bounded(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.LEAD, 1, "open")
    (item,) = store.claim_after(Kind.LEAD, 1, clock.now, None)
    store.retry(item, "x" * 10000, 1)
    assert len(row(store, Kind.LEAD, 1)["last_error"]) == 4000


def test_claim_after_continues_past_a_batch_in_queue_order(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue_many(Kind.LEAD, [5, 3, 9, 7], "export")      # one statement, same age: id order
    clock.advance(1)
    store.enqueue_many(Kind.LEAD, [1, 3], "open")               # 3 coalesces and keeps its age
    store.enqueue(Kind.CONTACT, 2, "edit")
    clock.advance(1)
    now = clock.now
    first = store.claim_after(Kind.LEAD, 2, now, None)
    assert first == store.claim_after(Kind.LEAD, 2, now, None)
    rest = store.claim_after(Kind.LEAD, 10, now, first[-1])
    ordered = [i.billmgr_id for i in store.claim_after(Kind.LEAD, 10, now, None)]
    assert [i.billmgr_id for i in first + rest] == ordered and len(ordered) == 5 and ordered[-1] == 1
    assert store.claim_after(Kind.LEAD, 10, now, rest[-1]) == []
    assert row(store, Kind.LEAD, 3)["reason"] == "open" and row(store, Kind.LEAD, 3)["version"] == 2
