"""The module's own tables, created and upgraded in numbered, idempotent steps.

Every step is a list of statements that are safe to run twice (``IF NOT EXISTS``),
because MySQL commits DDL implicitly: a step interrupted half-way is simply run again.
A row in ``amocrm_schema_version`` records each finished step. ``GET_LOCK`` keeps
the installer and a worker from migrating at the same moment.

The three link tables are exactly the spec's (id, billmgr_id UNIQUE, amocrm_id), with
amocrm_id unique too since step 2; everything else the module needs lives in tables of
its own beside them.

Run by hand (credentials from db.conf)::

    python -m billmgr_amocrm.store.migrations [--status]
    python -m billmgr_amocrm.store.migrations --drop      # every table in MODULE_TABLES, nothing else
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

from ..foundation.clock import to_db, utcnow
from ..foundation.exitstatus import ExitStatus

TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
LOCK_NAME = "billmgr_amocrm_migrate"
LOCK_TIMEOUT_SECONDS = 60

log = logging.getLogger(__name__)


def _link_table(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        billmgr_id INT NOT NULL UNIQUE,
        amocrm_id BIGINT NOT NULL,
        KEY ix_{name}_amocrm (amocrm_id)
    ) {TABLE_OPTIONS}"""


@dataclass(frozen=True)
class AddColumn:
    """``ALTER TABLE ... ADD COLUMN`` run only when the column is missing (MySQL 8 has no
    ``ADD COLUMN IF NOT EXISTS``), so the step stays safe to run twice."""

    table: str
    column: str
    definition: str

    def statement(self) -> str:
        return f"ALTER TABLE {self.table} ADD COLUMN {self.column} {self.definition}"



def _one_link_per_amocrm_id(cur: Any) -> None:
    """Step 2: ``UNIQUE(amocrm_id)`` in the link tables, so one amoCRM entity is never linked to
    two BILLmanager entities.

    Existing duplicates are resolved first, deterministically and without amoCRM (a
    migration cannot call it): the link of the lowest BILLmanager id stays, the others are
    dropped, and each is logged. Both sides are queued for a full push: the kept one's PATCH
    writes its own marker into the shared entity, the dropped ones are created afresh, so
    amoCRM ends with one entity per marker. Safe to run twice.
    """
    from ..domain import Kind
    from .queries import link_table, marks, rows, sql

    for kind in Kind:
        table = link_table(kind)
        cur.execute(sql("duplicate_links", link_table=table))
        shared: dict[int, list[int]] = {}
        for amocrm_id, billmgr_id in cur.fetchall():
            shared.setdefault(int(amocrm_id), []).append(int(billmgr_id))
        dropped: list[int] = []
        for amocrm_id, owners in shared.items():
            kept, others = owners[0], owners[1:]
            log.warning("%s: amoCRM %s %d was linked to %s %s; kept the link of %d, dropped %s (queued: "
                        "re-created at the next sync; the kept one's push writes its own marker)",
                        table, kind.amo_entity, amocrm_id, kind.value, ", ".join(map(str, owners)), kept,
                        ", ".join(map(str, others)))
            dropped += others
        if dropped:
            cur.execute(sql("delete_links", link_table=table, ids=marks(len(dropped))), dropped)
            queued = sorted({b for owners in shared.values() for b in owners})
            cur.execute(sql("bind_shared"), (kind.value, to_db(utcnow()), "resync", 0))
            cur.execute(sql("enqueue", rows=rows("enqueue_row", len(queued))), queued)
        if not _has_index(cur, table, f"uq_{table}_amocrm"):
            cur.execute(f"ALTER TABLE {table} ADD UNIQUE KEY uq_{table}_amocrm (amocrm_id)")
        if _has_index(cur, table, f"ix_{table}_amocrm"):
            cur.execute(f"ALTER TABLE {table} DROP INDEX ix_{table}_amocrm")   # the unique key covers it


def _has_index(cur: Any, table: str, index: str) -> bool:
    cur.execute("SELECT COUNT(*) FROM information_schema.statistics "
                "WHERE table_schema = DATABASE() AND table_name = %s AND index_name = %s", (table, index))
    return bool(cur.fetchone()[0])


# A step is SQL text, or a function of a cursor for what SQL alone cannot say (it must be
# just as safe to run twice).
Statement = Union[str, AddColumn, Callable[[Any], None]]

# version -> statements. Never edit a released step: add a new one.
STEPS: tuple[tuple[int, tuple[Statement, ...]], ...] = (
    (1, (
        _link_table("amocrm_account2contact"),
        _link_table("amocrm_profile2company"),
        _link_table("amocrm_item2lead"),
        # One row per entity waiting to be synced; events for the same entity coalesce
        # into it (version counts them). state failed = dead letter, kept until retried.
        f"""CREATE TABLE IF NOT EXISTS amocrm_queue (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            kind VARCHAR(16) NOT NULL,
            billmgr_id INT NOT NULL,
            reason VARCHAR(16) NOT NULL,
            version INT NOT NULL DEFAULT 1,
            state ENUM('pending','failed') NOT NULL DEFAULT 'pending',
            attempts INT NOT NULL DEFAULT 0,
            next_attempt_at DATETIME(6) NOT NULL,
            first_queued_at DATETIME(6) NOT NULL,
            updated_at DATETIME(6) NOT NULL,
            last_error TEXT NULL,
            UNIQUE KEY uq_amocrm_queue_entity (kind, billmgr_id),
            KEY ix_amocrm_queue_due (state, kind, next_attempt_at),
            KEY ix_amocrm_queue_age (state, first_queued_at)
        ) {TABLE_OPTIONS}""",
        # Per entity: last successful sync, what was sent, and the create intent of the
        # exactly-once protocol (set and committed before the POST, cleared by the link).
        f"""CREATE TABLE IF NOT EXISTS amocrm_sync_state (
            kind VARCHAR(16) NOT NULL,
            billmgr_id INT NOT NULL,
            last_sync_at DATETIME(6) NULL,
            fingerprint VARCHAR(128) NOT NULL DEFAULT '',
            create_started_at DATETIME(6) NULL,
            PRIMARY KEY (kind, billmgr_id),
            KEY ix_amocrm_sync_state_create (kind, create_started_at),
            KEY ix_amocrm_sync_state_last (last_sync_at)
        ) {TABLE_OPTIONS}""",
        # Initial export: how far the enqueueing of each kind got, so it resumes.
        f"""CREATE TABLE IF NOT EXISTS amocrm_export_progress (
            kind VARCHAR(16) NOT NULL PRIMARY KEY,
            started_at DATETIME(6) NOT NULL,
            last_id INT NOT NULL DEFAULT 0,
            enqueued INT NOT NULL DEFAULT 0,
            finished_at DATETIME(6) NULL
        ) {TABLE_OPTIONS}""",
        # Small named bookmarks (reconciler's last run, and the like).
        f"""CREATE TABLE IF NOT EXISTS amocrm_cursor (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value VARCHAR(255) NOT NULL,
            updated_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
    (2, (
        # Who holds the engine lease (a MySQL named lock, the authority): one row.
        f"""CREATE TABLE IF NOT EXISTS amocrm_engine (
            id TINYINT NOT NULL PRIMARY KEY,
            host VARCHAR(255) NOT NULL,
            pid INT NOT NULL,
            command VARCHAR(64) NOT NULL,
            connection_id BIGINT NOT NULL,
            since DATETIME(6) NOT NULL,
            heartbeat_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
        # The hosts whose workers use this database, for sharing amoCRM's rate between them.
        f"""CREATE TABLE IF NOT EXISTS amocrm_hosts (
            host VARCHAR(255) NOT NULL PRIMARY KEY,
            since DATETIME(6) NOT NULL,
            seen_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
    (3, (
        # The token of the create request an intent belongs to: the created entities carry it
        # in their marker, so a lost answer is settled by one search (sync/settle.py).
        AddColumn("amocrm_sync_state", "create_token", "VARCHAR(32) NULL AFTER create_started_at"),
    )),
    (4, (_one_link_per_amocrm_id,)),
    (5, (
        # The last service event of each item (issue 15): a recheck, a resync or an export
        # gives rules keyed on the event the answer the event gave. The engine writes it
        # when it syncs the event's row; new events (suspend, resume, close) are new values.
        f"""CREATE TABLE IF NOT EXISTS amocrm_service_event (
            billmgr_id INT NOT NULL PRIMARY KEY,
            event VARCHAR(16) NOT NULL,
            event_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
)

LATEST_VERSION = STEPS[-1][0]

# Every table the module owns, for the uninstaller (--drop-data).
MODULE_TABLES = (
    "amocrm_account2contact", "amocrm_profile2company", "amocrm_item2lead",
    "amocrm_queue", "amocrm_sync_state", "amocrm_export_progress", "amocrm_cursor",
    "amocrm_engine", "amocrm_hosts", "amocrm_service_event",
    "amocrm_schema_version",
)

_VERSION_TABLE = f"""CREATE TABLE IF NOT EXISTS amocrm_schema_version (
    version INT NOT NULL PRIMARY KEY,
    applied_at DATETIME(6) NOT NULL
) {TABLE_OPTIONS}"""


class MigrationError(Exception):
    """The schema could not be brought up to date."""


def current_version(conn: Any) -> int:
    """Highest applied step, 0 for a database the module never touched."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name = 'amocrm_schema_version'")
        if not cur.fetchone()[0]:
            return 0
        cur.execute("SELECT COALESCE(MAX(version), 0) FROM amocrm_schema_version")
        return int(cur.fetchone()[0])


def migrate(conn: Any, target: int | None = None) -> list[int]:
    """Apply the missing steps up to ``target`` (default: all); return the versions applied."""
    target = LATEST_VERSION if target is None else target
    applied: list[int] = []
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT_SECONDS))
        if cur.fetchone()[0] != 1:
            raise MigrationError("another process is migrating the amoCRM tables; try again")
        try:
            cur.execute(_VERSION_TABLE)
            cur.execute("SELECT version FROM amocrm_schema_version")
            done = {int(row[0]) for row in cur.fetchall()}
            for version, statements in STEPS:
                if version > target or version in done:
                    continue
                for statement in statements:
                    _run(cur, statement)
                cur.execute("INSERT IGNORE INTO amocrm_schema_version (version, applied_at) VALUES (%s, %s)",
                            (version, to_db(utcnow())))
                conn.commit()
                applied.append(version)
        finally:
            cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
            cur.fetchall()
    return applied


def _run(cur: Any, statement: Statement) -> None:
    if isinstance(statement, str):
        cur.execute(statement)
        return
    if callable(statement):
        statement(cur)
        return
    cur.execute("SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND table_name = %s AND column_name = %s", (statement.table, statement.column))
    if not cur.fetchone()[0]:
        cur.execute(statement.statement())


def drop_all(conn: Any) -> list[str]:
    """Drop the module's tables, exactly those in MODULE_TABLES (uninstall --drop-data).

    Nothing is matched by name: another module's ``amocrm_...`` table and BILLmanager's
    own tables stay.  Foreign-key checks stay on, and when a table outside the list
    references one of ours, nothing is dropped (MigrationError names it).  The version
    table goes first (the list reversed): an interrupted drop never leaves it claiming
    tables that are gone.  Returns the names that existed and were dropped.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT table_name, referenced_table_name "
                    "FROM information_schema.key_column_usage "
                    "WHERE table_schema = DATABASE() AND referenced_table_schema = DATABASE() "
                    "AND referenced_table_name IN %s AND table_name NOT IN %s "
                    "ORDER BY table_name, referenced_table_name", (MODULE_TABLES, MODULE_TABLES))
        referring = [f"{row[0]} -> {row[1]}" for row in cur.fetchall()]
        if referring:
            raise MigrationError("other tables have foreign keys to the module's tables "
                                 f"({', '.join(referring)}): nothing was dropped; drop those keys first")
        cur.execute("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name IN %s", (MODULE_TABLES,))
        present = {str(row[0]) for row in cur.fetchall()}
        dropped = [table for table in reversed(MODULE_TABLES) if table in present]
        for table in dropped:
            cur.execute(f"DROP TABLE IF EXISTS {table}")  # noqa: S608 - from MODULE_TABLES, never input
    conn.commit()
    return dropped


def main(argv: Sequence[str] | None = None) -> ExitStatus:
    parser = argparse.ArgumentParser(prog="python -m billmgr_amocrm.store.migrations",
                                     description="Create or upgrade the amoCRM module's tables (db.conf).")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="only print the schema version")
    action.add_argument("--drop", action="store_true",
                        help="drop the module's tables (MODULE_TABLES only; amocrm-install --uninstall "
                             "--drop-data runs this)")
    args = parser.parse_args(argv)
    from ..db import connect
    from ..dbconf import DbConfigError

    try:
        conn = connect()
    except DbConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.USAGE
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        sys.stderr.write(f"error: cannot connect to MySQL: {exc}\n")
        return ExitStatus.ERROR
    try:
        if args.drop:
            dropped = drop_all(conn)
            sys.stdout.write(f"dropped: {' '.join(dropped)}\n" if dropped else "no module tables found\n")
            return ExitStatus.OK
        if not args.status:
            applied = migrate(conn)
            sys.stdout.write(f"applied: {', '.join(map(str, applied)) or 'nothing (up to date)'}\n")
        sys.stdout.write(f"schema version: {current_version(conn)} (latest {LATEST_VERSION})\n")
    except MigrationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitStatus.ERROR
    finally:
        conn.close()
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
