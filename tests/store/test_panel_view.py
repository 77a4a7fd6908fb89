"""The panel's read model (MySQL only): the bindings list (links joined with queue and sync
state), link counts, the last sync."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.store import MySqlStore

from .conftest import FakeClock, claim


@pytest.fixture
def populated(store: MySqlStore, clock: FakeClock) -> MySqlStore:
    """contact 1 synced; contact 2 linked and queued again; company 3 failed; lead 4 queued, never linked."""
    store.put_links(Kind.CONTACT, [(1, 501), (2, 502)])
    store.record_synced_many(Kind.CONTACT, [(1, "")], clock.now)
    store.record_synced_many(Kind.CONTACT, [(2, "")], clock.now + timedelta(seconds=10))
    store.enqueue(Kind.CONTACT, 2, "edit")
    store.enqueue(Kind.COMPANY, 3, "edit")
    (company,) = claim(store, Kind.COMPANY, 1, clock.now)
    store.fail(company, "400: INN 7701 is not valid_100%")
    store.enqueue(Kind.LEAD, 4, "open")
    return store


def keys(page) -> list[tuple[str, int]]:
    return [(b.kind.value, b.billmgr_id) for b in page.rows]


def test_every_linked_or_queued_entity_with_its_state(populated: MySqlStore, clock: FakeClock) -> None:
    page = populated.bindings()
    assert page.total == 4
    by_key = {(b.kind, b.billmgr_id): b for b in page.rows}
    assert by_key[(Kind.CONTACT, 1)].state == "synced" and by_key[(Kind.CONTACT, 1)].amocrm_id == 501
    assert by_key[(Kind.CONTACT, 1)].last_sync_at == clock.now
    assert by_key[(Kind.CONTACT, 2)].state == "queued" and by_key[(Kind.CONTACT, 2)].amocrm_id == 502
    assert by_key[(Kind.COMPANY, 3)].state == "failed" and "INN" in by_key[(Kind.COMPANY, 3)].last_error
    assert by_key[(Kind.LEAD, 4)].state == "queued" and by_key[(Kind.LEAD, 4)].amocrm_id is None


def test_filters(populated: MySqlStore) -> None:
    assert keys(populated.bindings(kind=Kind.CONTACT)) == [("contact", 1), ("contact", 2)]
    assert keys(populated.bindings(state="queued")) == [("contact", 2), ("lead", 4)]
    assert keys(populated.bindings(state="failed")) == [("company", 3)]
    assert keys(populated.bindings(kind=Kind.LEAD, state="synced")) == []
    assert keys(populated.bindings(search="502")) == [("contact", 2)]        # an amoCRM id
    assert keys(populated.bindings(search="4")) == [("lead", 4)]             # a BILLmanager id
    assert keys(populated.bindings(search="_100%")) == [("company", 3)]      # LIKE wildcards are literal
    assert keys(populated.bindings(search="valid")) == [("company", 3)]
    assert populated.bindings(search="x_y").total == 0


def test_order_and_paging(populated: MySqlStore) -> None:
    assert keys(populated.bindings(order="billmgr_id", descending=True)) == [
        ("lead", 4), ("company", 3), ("contact", 2), ("contact", 1)]
    assert keys(populated.bindings(order="kind")) == [
        ("contact", 1), ("contact", 2), ("company", 3), ("lead", 4)]
    states = [b.state for b in populated.bindings(order="state").rows]
    assert states == ["failed", "queued", "queued", "synced"]
    newest = keys(populated.bindings(order="last_sync_at", descending=True))
    assert newest[:2] == [("contact", 2), ("contact", 1)]
    page = populated.bindings(order="billmgr_id", limit=2, offset=2)
    assert page.total == 4 and keys(page) == [("company", 3), ("lead", 4)]


def test_bad_arguments_are_refused_clearly(store: MySqlStore) -> None:
    with pytest.raises(ValueError, match="unknown order"):
        store.bindings(order="amocrm_id; DROP TABLE amocrm_queue")
    with pytest.raises(ValueError, match="unknown binding state"):
        store.bindings(state="lost")


def test_link_counts_per_kind(populated: MySqlStore) -> None:
    populated.put_links(Kind.LEAD, [(4, 904), (5, 905)])
    assert populated.link_counts() == {Kind.CONTACT: 2, Kind.COMPANY: 0, Kind.LEAD: 2}


def test_last_sync_of_any_entity_or_of_a_kind(store: MySqlStore, clock: FakeClock) -> None:
    assert store.last_sync_at() is None
    store.record_synced_many(Kind.CONTACT, [(1, "f1")], clock.now)
    store.record_synced_many(Kind.LEAD, [(1, "f2")], clock.now + timedelta(seconds=5))
    store.record_synced_many(Kind.CONTACT, [(1, "f3")], clock.now + timedelta(seconds=2))
    store.begin_create(Kind.COMPANY, [1], clock.now + timedelta(seconds=9))    # an intent is no sync
    assert store.last_sync_at() == clock.now + timedelta(seconds=5)
    assert store.last_sync_at(Kind.CONTACT) == clock.now + timedelta(seconds=2)
    assert store.last_sync_at(Kind.COMPANY) is None
    moscow = timezone(timedelta(hours=3))
    store.record_synced_many(Kind.COMPANY, [(1, "")], datetime(2024, 5, 1, 18, 0, tzinfo=moscow))
    assert store.last_sync_at(Kind.COMPANY) == datetime(2024, 5, 1, 15, 0, tzinfo=timezone.utc)


def test_each_binding_shows_the_notes_and_tasks_made_on_it(populated: MySqlStore, conn: Any) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO amocrm_payment2note (payment_id, state, target_kind, target_id, status, queued_at) "
            "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
            [(10, "paid", "contact", 1, "done"), (10, "refunded", "contact", 1, "done"),
             (11, "paid", "contact", 1, "pending"),          # not made yet: not counted
             (11, "paid", "contact", 2, "failed"),
             (10, "paid", "lead", 4, "done")])
        cur.executemany(
            "INSERT INTO amocrm_renewal_task (item_id, expiredate, rule_id, status, task_id, due_at, "
            "created_at) VALUES (%s, %s, 'r1', %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            [(4, "2026-12-20", "completed", 901), (4, "2027-01-20", "open", 902),
             (4, "2027-02-20", "pending", None)])               # its intent was never sent: not counted
    conn.commit()
    by_key = {(b.kind, b.billmgr_id): (b.notes, b.tasks) for b in populated.bindings().rows}
    assert by_key == {(Kind.CONTACT, 1): (2, 0), (Kind.CONTACT, 2): (0, 0), (Kind.COMPANY, 3): (0, 0),
                      (Kind.LEAD, 4): (1, 2)}
