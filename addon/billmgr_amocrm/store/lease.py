"""One sync engine at a time for a database, whatever host or command runs it.

The lease is a MySQL named lock (``GET_LOCK``) held on a connection of its own. The
server keeps it for that connection and drops it when the connection ends (the process
died, the network broke, MariaDB restarted), so a crashed engine never blocks the next
one, and every host that shares the database sees the same lock: the daemon, cron's
``--once``, ``amocrm sync``, ``amocrm export``, on this host or another.

Who holds it is written in ``amocrm_engine`` (host, pid, command, since, heartbeat), so a
command that finds the engine busy can say who has it; the lock itself stays the
authority (a row whose connection no longer holds the lock describes nobody).

Fencing: before an engine commits a create intent (and so before it can send a create),
it checks on the very connection that commits it that the lock is still held by its
lease's connection (:meth:`EngineLease.verify`). An engine whose lease connection dropped
stops there; the next holder finds the open intents and settles them by the marker, so
a write that was already in flight is adopted, never sent twice.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, Callable, Iterator, Optional, Protocol

import pymysql

from ..errors import EngineBusy, LeaseLost
from ..foundation.clock import from_db, to_db, utcnow
from ..ports import EngineHolder
from .queries import sql

log = logging.getLogger(__name__)

LOCK_PREFIX = "billmgr_amocrm.engine:"
MAX_LOCK_NAME = 64          # MySQL's limit on a named lock


class LockHolder(Protocol):
    def lock_holder(self, name: str) -> Optional[int]: ...


def lock_name(database: str) -> str:
    """The lock of one database: two BILLmanager databases on one server do not block each other."""
    name = LOCK_PREFIX + database
    return name[:MAX_LOCK_NAME]


class EngineLease:
    """The engine lease of one database (see the module docstring); implements ``ports.Lease``."""

    def __init__(self, connect: Callable[[], Any], command: str, *, host: Optional[str] = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._connect = connect
        self.command = command
        self.host = host or socket.gethostname()
        self.clock = clock
        self._conn: Any = None
        self.name = ""
        self.token: Optional[int] = None     # the lease connection's id while the lease is ours
        self.acquired_at = 0.0                # time.monotonic() when it was taken

    @property
    def held(self) -> bool:
        return self.token is not None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease, waiting up to ``wait`` seconds; False if another engine has it."""
        if self.held:
            return True
        conn = self._connection(fresh=True)
        got = self._scalar(conn, sql("engine_lock_acquire"), (self.name, max(0, int(wait))))
        if got != 1:
            return False
        self.token = int(self._scalar(conn, sql("connection_id"), ()))
        self.acquired_at = time.monotonic()
        now = to_db(self.clock())
        self._exec(conn, sql("engine_register"),
                   (self.host, os.getpid(), self.command[:64], self.token, now, now))
        log.info("sync engine lease taken by %s (pid %d on %s)", self.command, os.getpid(), self.host)
        return True

    def release(self) -> None:
        """Give the lease back (closing the connection would too)."""
        if not self.held:
            return
        self.token = None
        with suppress(pymysql.err.Error):
            self._scalar(self._conn, sql("engine_lock_release"), (self.name,))

    def close(self) -> None:
        self.release()
        if self._conn is not None:
            with suppress(pymysql.err.Error):
                self._conn.close()
            self._conn = None

    def verify(self, store: LockHolder) -> None:
        """Fence: raise :class:`LeaseLost` unless the lock is still ours, checked on ``store``'s
        connection (inside the caller's transaction, where the intent is committed)."""
        if self.token is None or store.lock_holder(self.name) != self.token:
            self.token = None
            raise LeaseLost(f"the sync engine lease was lost (MySQL connection of {self.command} dropped); "
                            "another engine may run now")

    def heartbeat(self) -> None:
        """Keep the lease connection alive and the registry's heartbeat fresh; LeaseLost if gone."""
        if self.token is None:
            raise LeaseLost("the sync engine lease is not held")
        try:
            holder = self._scalar(self._conn, sql("engine_lock_holder"), (self.name,))
            if holder != self.token:
                raise LeaseLost(f"the sync engine lock is held by connection {holder}, not this one")
            self._exec(self._conn, sql("engine_heartbeat"), (to_db(self.clock()), self.token))
        except pymysql.err.Error as exc:
            self.token = None
            raise LeaseLost(f"the sync engine lease connection failed: {exc}") from None

    def held_for(self) -> float:
        """Seconds since this lease was taken (0 when it is not held)."""
        return time.monotonic() - self.acquired_at if self.held else 0.0

    def announce_host(self, host: str, live_window: float, quiet: float) -> tuple[int, bool]:
        """This host's worker is alive: (hosts alive on the database, this host joined < quiet s ago)."""
        conn = self._connection(fresh=not self.held)
        window, calm = int(live_window), int(quiet)
        self._exec(conn, sql("host_seen"), (host[:255], window))
        with conn.cursor() as cur:
            cur.execute(sql("live_hosts"), (host[:255], calm, window))
            count, new = cur.fetchone()
        conn.commit()
        return int(count), bool(int(new))

    def holder(self) -> Optional[EngineHolder]:
        """Who holds the lease now (None when nobody does)."""
        conn = self._connection(fresh=not self.held)
        held_by = self._scalar(conn, sql("engine_lock_holder"), (self.name,))
        if held_by is None:
            return None
        row = self._row(conn, sql("engine_holder"))
        if row is None or int(row[3]) != int(held_by):
            # the lock is held but the holder has not registered yet (a moment after GET_LOCK)
            return None
        now = self.clock()
        return EngineHolder(host=str(row[0]), pid=int(row[1]), command=str(row[2]),
                            since=from_db(row[4]) or now, heartbeat_at=from_db(row[5]) or now)

    @contextmanager
    def engaged(self) -> Iterator[EngineLease]:
        """Hold the lease for a block: taken (and given back) here unless this lease already has
        it (the daemon keeps it across passes); :class:`EngineBusy` when another engine has it."""
        if self.held:
            yield self
            return
        if not self.acquire():
            raise EngineBusy(self.holder())
        try:
            yield self
        finally:
            self.release()

    # ------------------------------------------------------------------ the lease connection
    def _connection(self, fresh: bool = False) -> Any:
        """The lease connection; ``fresh``: make sure it is alive (reconnect once if it is not),
        as a lease taken on a connection that is already dead would be lost at once."""
        if self._conn is not None and fresh:
            try:
                self._conn.ping(reconnect=False)
            except pymysql.err.Error:
                with suppress(pymysql.err.Error):
                    self._conn.close()
                self._conn = None
        if self._conn is None:
            self._conn = self._connect()
            self.name = lock_name(str(self._scalar(self._conn, sql("current_database"), ())))
        return self._conn

    @staticmethod
    def _scalar(conn: Any, statement: str, args: Any) -> Any:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            row = cur.fetchone()
        conn.commit()
        return None if row is None else row[0]

    @staticmethod
    def _row(conn: Any, statement: str) -> Any:
        with conn.cursor() as cur:
            cur.execute(statement)
            row = cur.fetchone()
        conn.commit()
        return row

    @staticmethod
    def _exec(conn: Any, statement: str, args: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(statement, args)
        conn.commit()
