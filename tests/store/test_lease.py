"""The engine lease on a real MariaDB: one holder per database, gone with its connection, fenced."""

from __future__ import annotations

from typing import Iterator

import pytest

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.errors import EngineBusy, LeaseLost
from billmgr_amocrm.store.lease import EngineLease
from billmgr_amocrm.store.migrations import migrate
from billmgr_amocrm.store.store import MySqlStore
from tests.store.conftest import _database, admin_connection


@pytest.fixture
def db() -> Iterator[DbSettings]:
    for settings in _database():
        conn = connect(settings)
        migrate(conn)
        conn.close()
        yield settings


def lease(db: DbSettings, command: str, host: str = "billing-1") -> EngineLease:
    return EngineLease(lambda: connect(db, autocommit=True), command, host=host)


def test_one_holder_at_a_time_and_the_others_are_told_who(db: DbSettings) -> None:
    daemon, cli = lease(db, "amocrm_task --daemon"), lease(db, "amocrm sync", host="billing-2")
    try:
        assert daemon.acquire()
        assert not cli.acquire()
        holder = cli.holder()
        assert holder is not None and holder.command == "amocrm_task --daemon" and holder.host == "billing-1"
        assert "amocrm_task --daemon (pid" in holder.describe()
        with pytest.raises(EngineBusy, match="amocrm_task --daemon"), cli.engaged():
            pass
        with daemon.engaged():                # already held: the daemon keeps it after the block
            pass
        assert daemon.held and not cli.acquire()
        daemon.release()
        assert cli.acquire() and cli.holder() is not None and cli.holder().host == "billing-2"  # type: ignore[union-attr]
    finally:
        daemon.close()
        cli.close()


def test_the_lease_dies_with_its_connection_and_the_fence_notices(db: DbSettings) -> None:
    first, second = lease(db, "amocrm_task --once"), lease(db, "amocrm sync")
    conn = connect(db)
    store = MySqlStore(conn)
    try:
        assert first.acquire()
        first.verify(store)                          # ours: no exception
        admin = admin_connection()
        with admin.cursor() as cur:                  # the process behind it died, or MariaDB dropped it
            cur.execute(f"KILL {first.token}")
        admin.close()
        assert second.acquire(wait=5)
        with pytest.raises(LeaseLost):
            first.verify(store)
        assert not first.held
        with pytest.raises(LeaseLost):
            first.heartbeat()
        second.heartbeat()
    finally:
        conn.close()
        first.close()
        second.close()


def test_two_databases_on_one_server_do_not_block_each_other(db: DbSettings) -> None:
    for other in _database():
        conn = connect(other)
        migrate(conn)
        conn.close()
        mine, theirs = lease(db, "amocrm_task --daemon"), lease(other, "amocrm_task --daemon")
        try:
            assert mine.acquire() and theirs.acquire()
            assert mine.name != theirs.name
        finally:
            mine.close()
            theirs.close()
