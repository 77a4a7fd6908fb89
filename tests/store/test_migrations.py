"""The schema: the spec's link tables exactly, the module's own tables, idempotent upgrades."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.store.migrations import (
    LATEST_VERSION,
    MODULE_TABLES,
    STEPS,
    _one_link_per_amocrm_id,
    current_version,
    drop_all,
    migrate,
)
from tests.sandbox.dbconf import render_db_conf

ALL_STEPS = [version for version, _ in STEPS]
LINK_TABLES = ("amocrm_account2contact", "amocrm_profile2company", "amocrm_item2lead")
ALL_STEPS = [version for version, _ in STEPS]
UNIQUE_STEP = next(version for version, statements in STEPS if _one_link_per_amocrm_id in statements)


def columns(conn, table: str) -> list[tuple[str, str, str, str, str]]:
    with conn.cursor() as cur:
        cur.execute("""SELECT column_name, column_type, is_nullable, column_key, extra
                       FROM information_schema.columns
                       WHERE table_schema = DATABASE() AND table_name = %s
                       ORDER BY ordinal_position""", (table,))
        return [tuple(str(v).lower() for v in row) for row in cur.fetchall()]


def test_link_tables_have_exactly_the_spec_columns(store_db: DbSettings) -> None:
    conn = connect(store_db)
    try:
        assert current_version(conn) == 0
        assert migrate(conn) == ALL_STEPS
        for table in LINK_TABLES:
            cols = columns(conn, table)
            assert [c[0] for c in cols] == ["id", "billmgr_id", "amocrm_id"], table
            id_col, billmgr_col, amocrm_col = cols
            assert id_col[1].startswith("int") and id_col[3] == "pri" and "auto_increment" in id_col[4]
            assert billmgr_col[1].startswith("int") and billmgr_col[2] == "no" and billmgr_col[3] == "uni"
            # one amoCRM entity per BILLmanager entity (step 2)
            assert amocrm_col[1].startswith("bigint") and amocrm_col[2] == "no" and amocrm_col[3] == "uni"
        with conn.cursor() as cur:
            cur.execute("""SELECT table_name, engine, table_collation FROM information_schema.tables
                           WHERE table_schema = DATABASE() AND table_name LIKE 'amocrm%%'""")
            tables = {row[0]: (row[1], row[2]) for row in cur.fetchall()}
        assert set(tables) == set(MODULE_TABLES)
        assert all(engine == "InnoDB" and collation.startswith("utf8mb4")
                   for engine, collation in tables.values())
    finally:
        conn.close()


def test_migrate_is_idempotent_and_survives_an_interrupted_step(store_db: DbSettings) -> None:
    conn = connect(store_db)
    try:
        migrate(conn)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (7, 700)")
        conn.commit()
        assert migrate(conn) == []
        # A step whose DDL ran but whose version row was never written runs again harmlessly.
        with conn.cursor() as cur:
            cur.execute("DELETE FROM amocrm_schema_version")
        conn.commit()
        assert migrate(conn) == ALL_STEPS
        assert current_version(conn) == LATEST_VERSION
        with conn.cursor() as cur:
            cur.execute("SELECT amocrm_id FROM amocrm_item2lead WHERE billmgr_id = 7")
            assert cur.fetchone() == (700,)
        drop_all(conn)
        assert current_version(conn) == 0
    finally:
        conn.close()


def test_migrations_module_runs_from_db_conf(store_db: DbSettings, mgr5_root: Path) -> None:
    (mgr5_root / "etc" / "billmgr.conf.d" / "db.conf").write_text(render_db_conf(store_db))
    cmd = [sys.executable, "-m", "billmgr_amocrm.store.migrations"]
    env_path = str(Path(__file__).resolve().parents[2] / "addon")
    env = {"MGR5_ROOT": str(mgr5_root), "PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stderr
    assert f"applied: {', '.join(map(str, ALL_STEPS))}" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 0 and "nothing (up to date)" in again.stdout
    (mgr5_root / "etc" / "billmgr.conf.d" / "db.conf").write_text("DBHost localhost\n")
    broken = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert broken.returncode == 2 and "missing DBUser" in broken.stderr


def test_step_2_resolves_shared_amocrm_ids_then_makes_them_unique(store_db: DbSettings, caplog) -> None:
    import logging

    import pymysql
    import pytest

    conn = connect(store_db)
    try:
        migrate(conn, target=1)
        with conn.cursor() as cur:
            # contact 777 linked to clients 9, 3 and 5; 888 to client 4 alone; leads 1 and 2 share 55
            cur.execute("INSERT INTO amocrm_account2contact (billmgr_id, amocrm_id) "
                        "VALUES (9, 777), (3, 777), (4, 888), (5, 777)")
            cur.execute("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (2, 55), (1, 55)")
        conn.commit()
        with caplog.at_level(logging.WARNING, logger="billmgr_amocrm.store.migrations"):
            assert migrate(conn) == ALL_STEPS[1:]
        with conn.cursor() as cur:
            cur.execute("SELECT billmgr_id, amocrm_id FROM amocrm_account2contact ORDER BY billmgr_id")
            assert cur.fetchall() == ((3, 777), (4, 888))
            cur.execute("SELECT billmgr_id, amocrm_id FROM amocrm_item2lead")
            assert cur.fetchall() == ((1, 55),)
            # every side of a shared link is pushed again: the kept one writes its own marker
            cur.execute("SELECT kind, billmgr_id FROM amocrm_queue "
                        "WHERE reason = 'resync' AND state = 'pending' ORDER BY kind, billmgr_id")
            assert cur.fetchall() == (("contact", 3), ("contact", 5), ("contact", 9),
                                      ("lead", 1), ("lead", 2))
            with pytest.raises(pymysql.err.IntegrityError):
                cur.execute("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (3, 55)")
        messages = [r.getMessage() for r in caplog.records]
        assert any("amocrm_account2contact: amoCRM contacts 777 was linked to contact 3, 5, 9; kept the link "
                   "of 3, dropped 5, 9" in m for m in messages), messages
        assert any("amocrm_item2lead: amoCRM leads 55 was linked to lead 1, 2; kept the link of 1, dropped 2"
                   in m for m in messages), messages
        # run again (an interrupted step): nothing changes
        with conn.cursor() as cur:
            cur.execute("DELETE FROM amocrm_schema_version WHERE version = %s", (UNIQUE_STEP,))
        conn.commit()
        assert migrate(conn) == [UNIQUE_STEP]
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM amocrm_account2contact")
            assert cur.fetchone() == (2,)
    finally:
        conn.close()
