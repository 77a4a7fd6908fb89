"""One MySQL connection and the units of work on it: the base every part of the store shares.

Units of work: each public method of the store runs in ``transaction()``; outside an
explicit one it commits by itself, inside one it joins it. The outermost
``transaction()`` reconnects when its BEGIN finds the server gone, so a worker survives
a MariaDB restart between units.

Times: every column is UTC in ``DATETIME(6)``. Aware datetimes passed in are converted
to UTC, naive ones are taken as UTC (``to_db``); datetimes returned are aware UTC
(``from_db``, :mod:`..foundation.clock`). The store's clock (injectable for tests)
stamps what the caller does not date.

Statements come from ``queries.sql`` by name (:mod:`.queries`); a chunk of rows is ONE
multi-row statement (PyMySQL's executemany when VALUES holds only %s), and values all
rows share are bound once into session variables (:meth:`UnitOfWork._bind_shared`).
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

import pymysql.cursors

from ..domain import Kind
from ..foundation.clock import from_db, to_db, utcnow
from .queries import rows, sql

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ID_CHUNK = 1000     # rows per statement: IN lists and multi-row VALUES stay well under max_allowed_packet


def chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    """Distinct ids, ascending, ``ID_CHUNK`` at a time."""
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), ID_CHUNK):
        yield unique[start:start + ID_CHUNK]


def row_chunks(items: Sequence[Any]) -> Iterator[list[Any]]:
    """Rows as given, ``ID_CHUNK`` at a time."""
    for start in range(0, len(items), ID_CHUNK):
        yield list(items[start:start + ID_CHUNK])


def aware(value: datetime) -> datetime:
    """A NOT NULL DATETIME column as an aware UTC datetime."""
    moment = from_db(value)
    assert moment is not None
    return moment


class UnitOfWork:
    """A PyMySQL connection, its transactions and the cursor helpers the store's parts use."""

    def __init__(self, conn: Any, clock: Clock = utcnow, *,
                 units: Optional[ContextManager[Any]] = None) -> None:
        self._conn = conn
        self._clock = clock
        self._depth = 0
        # Taken at a unit's first write and held until it commits or rolls back: the engine's
        # lanes share one (and so does every store of an App), so only one of their units holds
        # row locks at a time while their reads and their amoCRM requests overlap. Units that
        # wrote neighbouring keys of the same indexes at once deadlocked in InnoDB (batches
        # deferring children and queueing the same contacts), which would end the pass. Reads
        # take no row locks (READ COMMITTED, no locking reads outside a claim with SKIP LOCKED),
        # so a unit waiting for its first write holds nothing another one needs.
        self._units: ContextManager[Any] = units if units is not None else nullcontext()
        self._holds_turn: bool = False
        self._skip_locked: bool | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._rollback_quietly()
            raise
        else:
            self._conn.commit()
        finally:
            self._depth = 0
            if self._holds_turn:
                self._holds_turn = False
                self._units.__exit__(None, None, None)

    def _writing(self) -> None:
        """Before a statement that writes (or locks rows): this unit's turn to hold row locks."""
        if self._depth and not self._holds_turn:
            self._units.__enter__()
            self._holds_turn = True

    def _begin(self) -> None:
        """BEGIN, reconnecting once if the server went away (restart, wait_timeout, KILL) since
        the last unit.

        BEGIN itself is the liveness check: it changes nothing, so when it fails on a dead
        connection it is safe to reconnect and send it again. A separate ping before it
        cost one more round trip per unit of work (about 700 in a 27,000-entity export).
        Inside a transaction nothing is retried: the caller's unit of work failed.
        """
        try:
            self._conn.begin()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
            log.info("MySQL connection lost (%s); reconnecting", type(exc).__name__)
            with suppress(pymysql.err.Error):
                self._conn.close()      # frees the dead socket; "already closed" is fine
            self._conn.connect()
            self._conn.begin()

    def _rollback_quietly(self) -> None:
        try:
            self._conn.rollback()
        except Exception as exc:  # noqa: BLE001 - the original error matters, a dead link cannot roll back
            log.debug("rollback failed (connection lost?): %r", exc)

    def _now(self) -> datetime:
        """The store's clock, as a DATETIME column stores it."""
        return to_db(self._clock())

    def _cursor(self) -> Any:
        # Tuple rows whatever cursor class the connection was opened with.
        return self._conn.cursor(pymysql.cursors.Cursor)

    def _exec(self, statement: str, args: Sequence[object] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        self._writing()
        with self._cursor() as cur:
            return int(cur.execute(statement, tuple(args)))

    def _rows(self, statement: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(statement, tuple(args))
            return list(cur.fetchall())

    def _many(self, statement: str, values: Sequence[Sequence[object]]) -> None:
        """executemany: PyMySQL sends an INSERT whose VALUES holds only %s as one multi-row statement."""
        self._writing()
        with self._cursor() as cur:
            cur.executemany(statement, [tuple(v) for v in values])

    def _insert_rows(self, name: str, row: str, args: Sequence[object], per_row: int) -> None:
        """One multi-row statement: query ``name`` with its ``{rows}`` = ``row`` once per ``per_row`` args."""
        self._exec(sql(name, rows=rows(row, len(args) // per_row)), args)

    def _bind_shared(self, kind: Kind, now: datetime, reason: str = "", created: bool = False) -> None:
        """The session variables the row templates read (inside the caller's transaction)."""
        self._exec(sql("bind_shared"), (kind.value, to_db(now), reason, int(created)))

    def lock_holder(self, name: str) -> int | None:
        """The connection id that holds a MySQL named lock, None when it is free (the engine
        lease's fence: see lease.py)."""
        with self.transaction():
            holder = self._rows(sql("engine_lock_holder"), (name,))[0][0]
        return None if holder is None else int(holder)

    @property
    def supports_skip_locked(self) -> bool:
        """MariaDB >= 10.6 or MySQL >= 8.0 understand ``SKIP LOCKED``."""
        if self._skip_locked is None:
            with self.transaction():
                version = str(self._rows(sql("server_version"))[0][0])
            match = re.match(r"(\d+)\.(\d+)", version)
            major, minor = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
            if "mariadb" in version.lower():
                self._skip_locked = (major, minor) >= (10, 6)
            else:
                self._skip_locked = major >= 8
        return self._skip_locked
