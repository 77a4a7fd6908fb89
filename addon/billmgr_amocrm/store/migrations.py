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
from typing import Any, Sequence

from ..foundation.clock import to_db, utcnow
from ..foundation.exitstatus import ExitStatus
from .schema import (  # noqa: F401  (MODULE_TABLES, STEPS: read from here by the installer and tests)
    LATEST_VERSION,
    MODULE_TABLES,
    STEPS,
    TABLE_OPTIONS,
    AddColumn,
    Statement,
    _one_link_per_amocrm_id,
)

LOCK_NAME = "billmgr_amocrm_migrate"
LOCK_TIMEOUT_SECONDS = 60

log = logging.getLogger(__name__)


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
