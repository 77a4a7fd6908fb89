"""What only the MySQL store has: columns as stored, statements chunked over 1000 ids,
commits other connections see, SKIP LOCKED, reconnects. The rules both stores keep are
in test_contract_*.py.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Iterator

import pymysql
import pytest

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.migrations import migrate
from billmgr_amocrm.store.store import MySqlStore
from billmgr_amocrm.store.unit_of_work import ID_CHUNK

from .conftest import FakeClock, admin_connection, claim


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


def test_times_are_stored_as_naive_utc_and_errors_bounded(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.LEAD, 1, "open")
    (item,) = claim(store, Kind.LEAD, 1, clock.now)
    store.retry(item, "x" * 10000, 90)
    state = row(store, Kind.LEAD, 1)
    assert state["first_queued_at"] == clock.now.replace(tzinfo=None)
    assert state["next_attempt_at"] == clock.now.replace(tzinfo=None) + timedelta(seconds=90)
    assert len(state["last_error"]) == 4000


def test_complete_of_an_older_version_clears_the_error(store: MySqlStore, clock: FakeClock) -> None:
    store.enqueue(Kind.LEAD, 1, "open")
    (item,) = claim(store, Kind.LEAD, 1, clock.now)
    store.retry(item, "502", 0)
    store.enqueue(Kind.LEAD, 1, "edit")
    assert row(store, Kind.LEAD, 1)["last_error"] == "502"     # a new event keeps the error
    store.complete_many([item])
    assert (row(store, Kind.LEAD, 1)["attempts"], row(store, Kind.LEAD, 1)["last_error"]) == (0, None)


@pytest.fixture
def own_store(store_db: DbSettings, clock: FakeClock) -> Iterator[MySqlStore]:
    """A store on a database of its own: thousands of rows would change the shared database's
    index statistics, and with them the plans (and the rows locked) in the tests after."""
    conn = connect(store_db)
    migrate(conn)
    try:
        yield MySqlStore(conn, clock=clock)
    finally:
        conn.close()


def test_statements_are_chunked_past_a_thousand_ids(own_store: MySqlStore, clock: FakeClock) -> None:
    store = own_store
    many = list(range(1, 2 * ID_CHUNK + 501))
    store.enqueue_many(Kind.LEAD, many, "export")
    claimed = claim(store, Kind.LEAD, len(many), clock.now)
    assert [i.billmgr_id for i in claimed] == many
    store.put_links(Kind.LEAD, [(i, i * 10) for i in many])
    store.record_synced_many(Kind.LEAD, [(i, f"f{i}") for i in many], clock.now)
    store.begin_create(Kind.CONTACT, many, clock.now)
    found = store.links(Kind.LEAD, many + [len(many) + 1])
    assert len(found) == len(many) and found[many[-1]] == many[-1] * 10
    assert len(store.fingerprints(Kind.LEAD, many)) == len(many)
    assert len(store.open_creates(Kind.CONTACT, many)) == len(many)
    for item in claimed[:ID_CHUNK + 10]:
        store.fail(item, "400")
    assert store.retry_failed(ids=[i.id for i in claimed]) == ID_CHUNK + 10
    store.complete_many(claim(store, Kind.LEAD, len(many), clock.now))
    assert store.queue_stats().depth == 0
    assert store.delete_links(Kind.LEAD, many) == len(many)
    assert store.fingerprints(Kind.LEAD, many) == {}


def test_an_intent_is_committed_before_the_post(
        shared_db: DbSettings, store: MySqlStore, clock: FakeClock) -> None:
    store.begin_create(Kind.LEAD, [5], clock.now)
    other = connect(shared_db)
    try:
        assert MySqlStore(other).open_creates(Kind.LEAD) == {5: clock.now}
    finally:
        other.close()


def test_claim_inside_a_transaction_skips_rows_another_worker_holds(
        shared_db: DbSettings, store: MySqlStore, clock: FakeClock) -> None:
    assert store.supports_skip_locked      # MariaDB 10.6+ here
    for billmgr_id in range(1, 5):
        store.enqueue(Kind.LEAD, billmgr_id, "open")
    other_conn = connect(shared_db)
    other = MySqlStore(other_conn, clock=clock)
    try:
        with store.transaction():
            mine = claim(store, Kind.LEAD, 2, clock.now)
            with other.transaction():
                theirs = claim(other, Kind.LEAD, 10, clock.now)
    finally:
        other_conn.close()
    assert [i.billmgr_id for i in mine] == [1, 2]
    assert [i.billmgr_id for i in theirs] == [3, 4]


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
