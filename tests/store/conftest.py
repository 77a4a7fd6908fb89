"""Throw-away MariaDB databases for the store tests (unique names: safe under xdist).

``store_db``: an empty database of the test's own (migration tests).
``shared_db``: one migrated database per test session (per xdist worker); ``conn``
empties the module's tables before each test, which is much cheaper than creating
and migrating a database every time.
``store``: MySqlStore on ``conn`` (MySQL-only tests). ``any_store``: the subject of the
Store contract (test_contract_*.py), once MySqlStore and once the in-memory FakeStore,
both on the same injectable ``clock``.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Optional

import pymysql
import pytest

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.ports import QueueItem
from billmgr_amocrm.store.migrations import MODULE_TABLES, migrate
from billmgr_amocrm.store.store import MySqlStore
from tests.fake_store import FakeStore


def server_settings(database: str = "") -> DbSettings:
    return DbSettings(host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
                      port=int(os.environ.get("TEST_DB_PORT", "3306")),
                      user=os.environ.get("TEST_DB_USER", "root"),
                      password=os.environ.get("TEST_DB_PASSWORD", ""),
                      database=database)


def admin_connection() -> pymysql.connections.Connection:
    s = server_settings()
    return pymysql.connect(host=s.host, port=s.port, user=s.user, password=s.password, autocommit=True)


def _database() -> Iterator[DbSettings]:
    name = f"amocrm_store_{uuid.uuid4().hex[:12]}"
    admin = admin_connection()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield server_settings(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def store_db() -> Iterator[DbSettings]:
    """An empty database of its own; dropped afterwards."""
    yield from _database()


@pytest.fixture(scope="session")
def shared_db() -> Iterator[DbSettings]:
    """A migrated database shared by the tests of one session; dropped at the end."""
    for settings in _database():
        connection = connect(settings)
        migrate(connection)
        connection.close()
        yield settings


@pytest.fixture
def conn(shared_db: DbSettings) -> Iterator[pymysql.connections.Connection]:
    """A connection to the migrated database, its module tables emptied."""
    connection = connect(shared_db)
    with connection.cursor() as cur:
        for table in MODULE_TABLES:
            if table != "amocrm_schema_version":
                cur.execute(f"DELETE FROM {table}")
    connection.commit()
    try:
        yield connection
    finally:
        connection.close()


class FakeClock:
    """The store's notion of now, moved by hand (no sleeping, no timed assertions)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(conn: pymysql.connections.Connection, clock: FakeClock) -> MySqlStore:
    return MySqlStore(conn, clock=clock)


@pytest.fixture(params=["mysql", "fake"])
def any_store(request: pytest.FixtureRequest, clock: FakeClock) -> Any:
    """MySqlStore on a freshly emptied migrated database, or FakeStore in memory."""
    if request.param == "mysql":
        return MySqlStore(request.getfixturevalue("conn"), clock=clock)
    return FakeStore(clock=clock)


def claim(store: Any, kind: Kind, limit: int, now: datetime,
          after: Optional[QueueItem] = None) -> list[QueueItem]:
    """The first due rows of a kind (or those after ``after``), as the engine claims them."""
    return list(store.claim_after(kind, limit, now, after))
