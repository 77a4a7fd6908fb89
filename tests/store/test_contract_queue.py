"""The Store contract, queue part: MySqlStore and FakeStore must both pass every test here.

Coalescing, reason precedence, revival of failed rows, claim order and keyset, version-
checked completion, retry delay and due time, failure vs a newer event, dead letters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from billmgr_amocrm.domain import Kind

from .conftest import FakeClock, claim

TICK = timedelta(microseconds=1)


def test_events_for_one_entity_coalesce_into_one_row_that_keeps_its_age(
        any_store: Any, clock: FakeClock) -> None:
    first = clock.now
    for _ in range(10):
        any_store.enqueue(Kind.CONTACT, 5, "edit")
        last = clock.now
        clock.advance(1)
    any_store.enqueue(Kind.LEAD, 5, "open")          # same id, other kind: a row of its own
    assert claim(any_store, Kind.CONTACT, 10, last - TICK) == []     # due from the newest event on
    (row,) = claim(any_store, Kind.CONTACT, 10, last)
    assert (row.billmgr_id, row.version, row.attempts, row.reason) == (5, 10, 0, "edit")
    assert row.first_queued_at == first and row.first_queued_at.utcoffset() == timedelta(0)
    stats = any_store.queue_stats()
    assert stats.pending == {Kind.CONTACT: 1, Kind.COMPANY: 0, Kind.LEAD: 1}
    assert stats.failed_total == 0 and stats.oldest_pending_at == first


@pytest.mark.parametrize(("reasons", "kept"), [
    (["open", "edit", "reconcile"], "open"),
    (["open", "prolong"], "open"),
    (["edit", "prolong", "export"], "prolong"),
    (["prolong", "open"], "open"),
    (["export", "edit"], "edit"),
    (["edit", "reconcile"], "reconcile"),
    # lifecycle events follow the item's status: the newest of them wins, over open and prolong too
    (["suspend", "resume"], "resume"),
    (["resume", "suspend"], "suspend"),
    (["open", "suspend", "edit"], "suspend"),
    (["suspend", "open", "prolong", "reconcile"], "suspend"),
    (["close", "edit", "export"], "close"),
    (["prolong", "suspend", "close"], "close"),
], ids=lambda v: "-".join(v) if isinstance(v, list) else v)
def test_service_events_outrank_generic_reasons(
        any_store: Any, clock: FakeClock, reasons: list, kept: str) -> None:
    for reason in reasons:
        any_store.enqueue(Kind.LEAD, 9, reason)
    assert [i.reason for i in claim(any_store, Kind.LEAD, 1, clock.now)] == [kept]


def test_a_new_event_revives_a_failed_row_with_a_fresh_age_and_keeps_its_service_event(
        any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.LEAD, 8, "prolong")
    (item,) = claim(any_store, Kind.LEAD, 1, clock.now)
    any_store.retry(item, "502", 0)
    any_store.fail(item, "400")
    assert claim(any_store, Kind.LEAD, 1, clock.advance(3600)) == []
    assert any_store.queue_stats().failed[Kind.LEAD] == 1
    any_store.enqueue(Kind.LEAD, 8, "edit")         # precedence holds for failed rows too
    (revived,) = claim(any_store, Kind.LEAD, 1, clock.now)
    assert (revived.reason, revived.attempts, revived.version) == ("prolong", 0, 2)
    assert revived.first_queued_at == clock.now and revived.id == item.id
    assert any_store.queue_stats().failed_total == 0 and any_store.failed() == []


def test_claim_returns_due_rows_of_a_kind_oldest_first(any_store: Any, clock: FakeClock) -> None:
    for billmgr_id in (30, 10, 20):
        any_store.enqueue(Kind.CONTACT, billmgr_id, "edit")
        clock.advance(1)
    any_store.enqueue(Kind.COMPANY, 1, "edit")
    claimed = claim(any_store, Kind.CONTACT, 10, clock.now)
    assert [i.billmgr_id for i in claimed] == [30, 10, 20]
    assert [i.billmgr_id for i in claim(any_store, Kind.CONTACT, 2, clock.now)] == [30, 10]
    assert claim(any_store, Kind.CONTACT, 10, clock.now - timedelta(hours=1)) == []   # not due yet
    # Naive times are taken as UTC.
    assert len(claim(any_store, Kind.CONTACT, 10, clock.now.replace(tzinfo=None))) == 3
    item = claimed[0]
    assert (item.kind, item.reason, item.version, item.attempts) == (Kind.CONTACT, "edit", 1, 0)


def test_claim_after_continues_past_a_batch_in_queue_order(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue_many(Kind.LEAD, [5, 3, 9, 7], "export")      # same age: ascending billmgr id
    clock.advance(1)
    any_store.enqueue_many(Kind.LEAD, [1, 3], "open")               # 3 coalesces and keeps its age
    any_store.enqueue(Kind.CONTACT, 2, "edit")
    clock.advance(1)
    now = clock.now
    first = claim(any_store, Kind.LEAD, 2, now)
    rest = claim(any_store, Kind.LEAD, 10, now, after=first[-1])
    ordered = claim(any_store, Kind.LEAD, 10, now)
    assert [i.billmgr_id for i in ordered] == [3, 5, 7, 9, 1]
    assert first + rest == ordered
    assert claim(any_store, Kind.LEAD, 10, now, after=rest[-1]) == []
    assert (ordered[0].reason, ordered[0].version) == ("open", 2)


def test_complete_keeps_a_row_that_got_a_newer_event_with_a_clean_slate(
        any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.LEAD, 1, "open")
    any_store.enqueue(Kind.LEAD, 2, "open")
    one, two = claim(any_store, Kind.LEAD, 10, clock.now)
    any_store.retry(one, "502", 0)                  # an earlier failed try is forgotten on success
    any_store.enqueue(Kind.LEAD, 1, "edit")         # arrives while the worker is busy with item 1
    any_store.complete_many([one, two])
    left = claim(any_store, Kind.LEAD, 10, clock.now)
    assert [(i.billmgr_id, i.version, i.attempts, i.reason) for i in left] == [(1, 2, 0, "open")]
    any_store.complete_many(left)
    assert claim(any_store, Kind.LEAD, 10, clock.now) == [] and any_store.queue_stats().depth == 0


def test_complete_many_matches_each_row_by_its_own_version(any_store: Any, clock: FakeClock) -> None:
    """One call completes rows claimed at different versions; a row that got a newer event
    after its claim stays, whatever version its batch-mates had."""
    for billmgr_id in (1, 2, 3, 4):
        any_store.enqueue(Kind.LEAD, billmgr_id, "open")
    any_store.enqueue(Kind.LEAD, 3, "edit")                      # claimed at version 2
    any_store.enqueue(Kind.LEAD, 4, "edit")
    any_store.enqueue(Kind.LEAD, 4, "edit")                      # claimed at version 3
    claimed = claim(any_store, Kind.LEAD, 10, clock.now)
    assert sorted((i.billmgr_id, i.version) for i in claimed) == [(1, 1), (2, 1), (3, 2), (4, 3)]
    any_store.enqueue(Kind.LEAD, 2, "edit")                      # newer than its claim (version 1)
    any_store.enqueue(Kind.LEAD, 3, "edit")                      # newer than its claim (version 2)
    any_store.complete_many(claimed)
    left = claim(any_store, Kind.LEAD, 10, clock.now)
    assert sorted((i.billmgr_id, i.version) for i in left) == [(2, 2), (3, 3)]


def test_a_stale_item_never_completes_the_row_queued_after_it(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.CONTACT, 1, "edit")
    (item,) = claim(any_store, Kind.CONTACT, 1, clock.now)
    any_store.complete_many([item])
    any_store.enqueue(Kind.CONTACT, 1, "edit")       # a new row, at version 1 again
    any_store.complete_many([item])                  # the old item, completed twice
    (again,) = claim(any_store, Kind.CONTACT, 1, clock.now)
    assert again.version == 1 and again.id != item.id


def test_retry_backs_off_and_a_new_event_makes_it_due_now(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.COMPANY, 4, "edit")
    (item,) = claim(any_store, Kind.COMPANY, 1, clock.now)
    any_store.retry(item, "amoCRM answered 503", 120)
    assert claim(any_store, Kind.COMPANY, 1, clock.advance(120) - TICK) == []
    (again,) = claim(any_store, Kind.COMPANY, 1, clock.now)      # due exactly 120 s after the retry
    assert again.attempts == 1 and again.version == 1
    any_store.retry(again, "timeout", 600)
    any_store.enqueue(Kind.COMPANY, 4, "edit")                   # keeps the attempts, due now
    (due,) = claim(any_store, Kind.COMPANY, 1, clock.now)
    assert due.attempts == 2 and due.version == 2
    any_store.retry(due, "negative delays are none", -5)
    assert [i.attempts for i in claim(any_store, Kind.COMPANY, 1, clock.now)] == [3]


def test_retry_leaves_a_dead_letter_alone(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.CONTACT, 1, "edit")
    (item,) = claim(any_store, Kind.CONTACT, 1, clock.now)
    any_store.fail(item, "400: bad email")
    any_store.retry(item, "late retry", 0)
    (failed,) = any_store.failed()
    assert (failed.attempts, failed.last_error) == (1, "400: bad email")
    assert claim(any_store, Kind.CONTACT, 1, clock.now) == []


def test_fail_dead_letters_unless_a_newer_event_came(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.LEAD, 1, "open")
    any_store.enqueue(Kind.LEAD, 2, "open")
    any_store.enqueue(Kind.CONTACT, 3, "edit")
    lead1, lead2 = claim(any_store, Kind.LEAD, 10, clock.now)
    (contact,) = claim(any_store, Kind.CONTACT, 10, clock.now)
    any_store.fail(lead1, "400: price is not a number")
    clock.advance(1)
    any_store.fail(contact, "400: bad email")
    any_store.enqueue(Kind.LEAD, 2, "edit")         # newer data may fix it: stays pending
    any_store.fail(lead2, "400: something")
    (pending,) = claim(any_store, Kind.LEAD, 10, clock.now)
    assert (pending.billmgr_id, pending.attempts) == (2, 1)
    stats = any_store.queue_stats()
    assert stats.failed == {Kind.CONTACT: 1, Kind.COMPANY: 0, Kind.LEAD: 1} and stats.failed_total == 2
    assert stats.oldest_pending_at == pending.first_queued_at
    assert stats.oldest_pending_age(clock.advance(30)) == 31
    failed = any_store.failed()                     # most recently failed first
    assert [(f.kind, f.billmgr_id, f.last_error, f.attempts, f.reason) for f in failed] == [
        (Kind.CONTACT, 3, "400: bad email", 1, "edit"),
        (Kind.LEAD, 1, "400: price is not a number", 1, "open")]
    assert failed[0].updated_at == clock.now - timedelta(seconds=30)
    assert failed[1].first_queued_at == lead1.first_queued_at
    assert [f.billmgr_id for f in any_store.failed(Kind.CONTACT)] == [3]
    assert [f.billmgr_id for f in any_store.failed(limit=1, offset=1)] == [1]


def test_retry_failed_revives_dead_letters_by_kind_or_by_row_id(any_store: Any, clock: FakeClock) -> None:
    for kind, billmgr_id in ((Kind.LEAD, 1), (Kind.LEAD, 2), (Kind.CONTACT, 3)):
        any_store.enqueue(kind, billmgr_id, "open" if kind is Kind.LEAD else "edit")
    for kind in (Kind.LEAD, Kind.CONTACT):
        for item in claim(any_store, kind, 10, clock.now):
            any_store.fail(item, "400")
    clock.advance(60)
    assert any_store.retry_failed(ids=[]) == 0
    assert any_store.retry_failed(Kind.CONTACT) == 1
    lead_row = any_store.failed(Kind.LEAD)[-1]
    assert any_store.retry_failed(ids=[lead_row.id, 999_999]) == 1
    revived = {i.billmgr_id: i for i in claim(any_store, Kind.LEAD, 10, clock.now)}
    assert list(revived) == [lead_row.billmgr_id]
    item = revived[lead_row.billmgr_id]
    assert (item.attempts, item.reason, item.version, item.first_queued_at) == (0, "open", 2, clock.now)
    assert any_store.retry_failed() == 1 and any_store.queue_stats().failed_total == 0


def test_errors_are_kept_bounded(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.LEAD, 1, "open")
    (item,) = claim(any_store, Kind.LEAD, 1, clock.now)
    any_store.fail(item, "x" * 10000)
    assert len(any_store.failed()[0].last_error) == 4000


def test_a_recheck_queues_only_what_has_no_row_and_leaves_rows_as_they_are(
        any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.LEAD, 1, "export")
    any_store.enqueue(Kind.LEAD, 2, "prolong")
    any_store.enqueue(Kind.LEAD, 3, "edit")
    (failed,) = [i for i in claim(any_store, Kind.LEAD, 3, clock.now) if i.billmgr_id == 3]
    any_store.fail(failed, "400")
    clock.advance(5)
    any_store.recheck(Kind.LEAD, [1, 2, 3, 4, 4])
    any_store.recheck(Kind.LEAD, [])
    rows = {i.billmgr_id: i for i in claim(any_store, Kind.LEAD, 10, clock.now)}
    assert {b: (r.reason, r.version) for b, r in rows.items()} == {
        1: ("export", 1), 2: ("prolong", 1), 4: ("reconcile", 1)}
    assert rows[4].first_queued_at == clock.now
    assert [f.billmgr_id for f in any_store.failed()] == [3]       # a dead letter stays one
