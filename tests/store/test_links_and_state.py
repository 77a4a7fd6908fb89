"""Links, create intents, sync state, export progress, transactions, reconnects."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pymysql
import pytest

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.store import MySqlStore

from .conftest import FakeClock, admin_connection


def test_links_upsert_read_and_drop(store: MySqlStore) -> None:
    store.put_links(Kind.CONTACT, [(1, 1001)])
    store.put_links(Kind.CONTACT, [(2, 1002)])
    store.put_links(Kind.CONTACT, [(1, 5001)])       # replaced, not duplicated
    store.put_links(Kind.LEAD, [(1, 9001)])
    assert store.links(Kind.CONTACT, [1, 2, 3]) == {1: 5001, 2: 1002}
    assert store.links(Kind.LEAD, [1]) == {1: 9001}
    assert store.links(Kind.COMPANY, []) == {}
    store.drop_link(Kind.CONTACT, 2)
    assert store.links(Kind.CONTACT, [1, 2]) == {1: 5001}
    store.record_synced_many(Kind.LEAD, [(1, "abc")], datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert store.delete_links(Kind.LEAD, [1, 2]) == 1
    assert store.links(Kind.LEAD, [1]) == {} and store.fingerprints(Kind.LEAD, [1]) == {}


def test_links_read_many_ids_in_chunks(store: MySqlStore) -> None:
    with store._conn.cursor() as cur:
        cur.executemany("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (%s, %s)",
                        [(i, i * 10) for i in range(1, 2501)])
    store._conn.commit()
    found = store.links(Kind.LEAD, list(range(1, 2601)))
    assert len(found) == 2500 and found[2500] == 25000


def test_create_intents_until_linked(store: MySqlStore, clock: FakeClock) -> None:
    first = clock.now
    store.begin_create(Kind.COMPANY, [1, 2, 3], clock.now)
    store.begin_create(Kind.COMPANY, [2], clock.now + timedelta(minutes=5))   # a retry keeps the first time
    assert store.open_creates(Kind.COMPANY) == {1: first, 2: first, 3: first}
    assert store.open_creates(Kind.COMPANY, [2, 9]) == {2: first}
    assert store.open_creates(Kind.CONTACT) == {}
    store.put_links(Kind.COMPANY, [(1, 100)])
    store.clear_create(Kind.COMPANY, 3)
    assert store.open_creates(Kind.COMPANY) == {2: first}
    later = first + timedelta(hours=1)
    store.begin_create(Kind.COMPANY, [3], later.replace(tzinfo=None))   # naive times are taken as UTC
    assert store.open_creates(Kind.COMPANY, [3]) == {3: later}


def test_intent_is_committed_before_the_post(
        shared_db: DbSettings, store: MySqlStore, clock: FakeClock) -> None:
    store.begin_create(Kind.LEAD, [5], clock.now)
    other = connect(shared_db)
    try:
        assert MySqlStore(other).open_creates(Kind.LEAD) == {5: clock.now}
    finally:
        other.close()


def test_sync_state_and_last_sync(store: MySqlStore, clock: FakeClock) -> None:
    assert store.last_sync_at() is None
    store.record_synced_many(Kind.CONTACT, [(1, "f1")], clock.now)
    store.record_synced_many(Kind.LEAD, [(1, "f2")], clock.now + timedelta(seconds=5))
    store.record_synced_many(Kind.CONTACT, [(1, "f3")], clock.now + timedelta(seconds=2))
    assert store.last_sync_at() == clock.now + timedelta(seconds=5)
    assert store.last_sync_at(Kind.CONTACT) == clock.now + timedelta(seconds=2)
    assert store.fingerprints(Kind.CONTACT, [1, 2]) == {1: "f3"}
    moscow = timezone(timedelta(hours=3))
    store.record_synced_many(Kind.COMPANY, [(1, "")], datetime(2024, 5, 1, 18, 0, tzinfo=moscow))
    assert store.last_sync_at(Kind.COMPANY) == datetime(2024, 5, 1, 15, 0, tzinfo=timezone.utc)


def test_nested_transactions_join_the_outer_one(store: MySqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put_links(Kind.CONTACT, [(1, 11)])
        with store.transaction():
            store.enqueue(Kind.CONTACT, 1, "edit")
        raise RuntimeError("worker died mid-unit")
    assert store.links(Kind.CONTACT, [1]) == {} and store.queue_stats().depth == 0
    with store.transaction():
        store.put_links(Kind.CONTACT, [(1, 11)])
        store.enqueue(Kind.CONTACT, 1, "edit")
    assert store.links(Kind.CONTACT, [1]) == {1: 11} and store.queue_stats().depth == 1


def test_store_reconnects_after_its_connection_is_killed(store: MySqlStore) -> None:
    store.enqueue(Kind.CONTACT, 1, "edit")
    connection_id = store._conn.thread_id()
    admin = admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute("KILL %s", (connection_id,))
    finally:
        admin.close()
    store.enqueue(Kind.CONTACT, 1, "edit")
    assert store._conn.thread_id() != connection_id
    assert store.queue_stats().pending[Kind.CONTACT] == 1
    # A connection lost inside a unit of work fails that unit; nothing half-done remains.
    with pytest.raises(pymysql.err.OperationalError), store.transaction():
        store.enqueue(Kind.LEAD, 1, "open")
        admin = admin_connection()
        with admin.cursor() as cur:
            cur.execute("KILL %s", (store._conn.thread_id(),))
        admin.close()
        store.enqueue(Kind.LEAD, 2, "open")
    assert store.queue_stats().pending[Kind.LEAD] == 0


def test_store_reconnects_after_the_server_closed_an_idle_connection(store: MySqlStore) -> None:
    """wait_timeout: the server hangs up without a word; the next unit's BEGIN finds out."""
    store.enqueue(Kind.CONTACT, 1, "edit")
    connection_id = store._conn.thread_id()
    with store._conn.cursor() as cur:
        cur.execute("SET SESSION wait_timeout = 1")
    time.sleep(2.5)
    store.enqueue(Kind.CONTACT, 2, "edit")
    assert store._conn.thread_id() != connection_id
    assert store.queue_stats().pending[Kind.CONTACT] == 2


def test_claim_inside_a_transaction_skips_rows_another_worker_holds(
        shared_db: DbSettings, store: MySqlStore, clock: FakeClock) -> None:
    assert store.supports_skip_locked      # MariaDB 10.6+ here
    for billmgr_id in range(1, 5):
        store.enqueue(Kind.LEAD, billmgr_id, "open")
    other_conn = connect(shared_db)
    other = MySqlStore(other_conn, clock=clock)
    try:
        with store.transaction():
            mine = store.claim_after(Kind.LEAD, 2, clock.now, None)
            with other.transaction():
                theirs = other.claim_after(Kind.LEAD, 10, clock.now, None)
    finally:
        other_conn.close()
    assert [i.billmgr_id for i in mine] == [1, 2]
    assert [i.billmgr_id for i in theirs] == [3, 4]


def test_export_progress_resumes_and_restarts(store: MySqlStore, clock: FakeClock) -> None:
    assert store.export_progress(Kind.LEAD) is None
    started = store.export_begin(Kind.LEAD)
    assert (started.last_id, started.enqueued, started.finished_at) == (0, 0, None)
    store.export_advance(Kind.LEAD, 1000, 1000)
    clock.advance(60)
    resumed = store.export_begin(Kind.LEAD)       # interrupted: carries on from 1000
    assert (resumed.last_id, resumed.enqueued, resumed.started_at) == (1000, 1000, started.started_at)
    store.export_advance(Kind.LEAD, 1500, 400)
    store.export_finish(Kind.LEAD)
    done = store.export_progress(Kind.LEAD)
    assert done is not None and done.finished_at == clock.now and done.enqueued == 1400
    again = store.export_begin(Kind.LEAD)         # a finished export starts over
    assert (again.last_id, again.enqueued, again.started_at) == (0, 0, clock.now)
    assert store.get_cursor("reconcile.last") is None
    store.set_cursor("reconcile.last", "2024-05-01T12:00:00")
    store.set_cursor("reconcile.last", "2024-05-01T13:00:00")
    assert store.get_cursor("reconcile.last") == "2024-05-01T13:00:00"
