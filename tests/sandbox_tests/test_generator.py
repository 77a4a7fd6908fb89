"""The generator's promises: distributions, dirty rows, determinism, panel-like edits, CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from datetime import date

import pytest

from billmgr_amocrm.dbconf import load_db_settings
from tests.fixtures.database import unique_db_name
from tests.sandbox import DIRTY_CASES, Sandbox, create_sandbox, drop_database, server_connection
from tests.sandbox.generate import ITEMTYPES, PROFILE_STORE, add_months

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLES = ("account", "account2project", "user", "profile", "item", "itemparam", "pricelist", "itemtype",
          "currency", "project", "country")


def table_digest(settings) -> str:
    digest = hashlib.sha256()
    conn = server_connection(settings, settings.database)
    try:
        with conn.cursor() as cur:
            for table in TABLES:
                cur.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
                for row in cur.fetchall():
                    digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


def test_summary_matches_the_database_and_covers_every_kind(sandbox_db):
    s = sandbox_db.summary
    q = sandbox_db.query
    assert q("SELECT COUNT(*) FROM account")[0][0] == s.clients == 30
    assert q("SELECT COUNT(*) FROM item")[0][0] == s.services == 200
    assert q("SELECT COUNT(*) FROM user")[0][0] == s.users
    assert q("SELECT COUNT(*) FROM itemparam")[0][0] == s.itemparams
    assert dict(q("SELECT profiletype, COUNT(*) FROM profile GROUP BY profiletype")) == s.payers_by_type
    assert set(s.payers_by_type) == {1, 2, 3}
    assert dict(q("SELECT status, COUNT(*) FROM item GROUP BY status")) == s.services_by_status
    assert set(s.services_by_status) == {1, 2, 3, 4, 5}
    assert set(s.services_by_itemtype) >= {t[1] for t in ITEMTYPES}
    assert set(s.dirty) == set(DIRTY_CASES)
    # Clients with several users exist; legal entities carry requisites.
    multi_user = "SELECT COUNT(*) FROM (SELECT account FROM user GROUP BY account HAVING COUNT(*) > 1) t"
    assert q(multi_user)[0][0] > 0
    assert q("SELECT COUNT(*) FROM profile WHERE profiletype = 2 AND vatnum REGEXP '^[0-9]{10}$' "
             "AND kpp IS NOT NULL AND address_legal IS NOT NULL")[0][0] > 0


def test_dirty_rows_are_really_dirty(sandbox_db):
    d = sandbox_db.summary.dirty
    q = sandbox_db.query

    def main_user(account_id, column):
        rows = q(f"SELECT {column} FROM user WHERE account = %s ORDER BY id LIMIT 1", (account_id,))
        return rows[0][0] if rows else "no user"

    assert main_user(d["client.no_email"], "email") is None
    assert main_user(d["client.empty_email"], "email") == ""
    assert main_user(d["client.shared_phone_a"], "phone") == main_user(d["client.shared_phone_b"], "phone")
    assert len(q("SELECT name FROM account WHERE id = %s", (d["client.long_name"],))[0][0]) == 255
    assert "🚀" in q("SELECT name FROM account WHERE id = %s", (d["client.emoji"],))[0][0]
    assert "<b>" in q("SELECT name FROM account WHERE id = %s", (d["client.html"],))[0][0]
    assert "DROP TABLE" in q("SELECT name FROM account WHERE id = %s", (d["client.sql"],))[0][0]
    assert q("SELECT COUNT(*) FROM user WHERE account = %s", (d["client.no_users"],))[0][0] == 0
    assert main_user(d["client.disabled_main_user"], "enabled") == "off"
    assert q("SELECT value FROM itemparam WHERE item = %s", (d["service.no_params"],)) == []
    assert q("SELECT COUNT(*) FROM pricelist p JOIN item i ON i.pricelist = p.id WHERE i.id = %s",
             (d["service.missing_pricelist"],))[0][0] == 0
    assert q("SELECT CAST(expiredate AS CHAR) FROM item WHERE id = %s",
             (d["service.zero_date"],))[0][0] == "0000-00-00"
    for status in range(1, 6):
        assert q("SELECT status FROM item WHERE id = %s", (d[f"service.status_{status}"],))[0][0] == status
    phones = {r[0] for r in q("SELECT phone FROM user WHERE phone IS NOT NULL")}
    assert any(p.startswith("+7 (") for p in phones) and any(p.startswith("+1 ") for p in phones)
    assert any(p.startswith("8-9") for p in phones)


def test_same_seed_same_rows_other_seed_other_rows(db_server):
    names = [unique_db_name() for _ in range(3)]
    settings = [replace(db_server, database=n) for n in names]
    try:
        for s, seed in zip(settings, (5, 5, 6)):
            create_sandbox(s, clients=40, services=150, seed=seed, today=date(2024, 3, 1))
        first, second, other = (table_digest(s) for s in settings)
        assert first == second
        assert first != other
    finally:
        for s in settings:
            drop_database(s)


def test_panel_like_edits_return_ids_and_change_rows(sandbox_db):
    sb: Sandbox = sandbox_db
    new = sb.add_client(name="ООО Ромашка", email="info@romashka.ru", phone="+7 900 000-00-00")
    assert new.account_id > sandbox_db.summary.clients
    sb.edit_client(new.account_id, name="ООО Ромашка+", email="new@romashka.ru")
    assert sb.query("SELECT a.name, u.email FROM account a JOIN user u ON u.account = a.id WHERE a.id = %s",
                    (new.account_id,)) == [("ООО Ромашка+", "new@romashka.ru")]
    uid = sb.add_user(new.account_id, email="buh@romashka.ru", enabled=False)
    assert sb.query("SELECT account, enabled FROM user WHERE id = %s", (uid,)) == [(new.account_id, "off")]
    pid = sb.add_payer(new.account_id, name='ООО "Ромашка"', inn="7701234567")
    sb.edit_payer(pid, kpp="770101001")
    assert sb.query("SELECT profiletype, vatnum, kpp FROM profile WHERE id = %s", (pid,)) == [
        (2, "7701234567", "770101001")]
    iid = sb.open_service(new.account_id, itemtype="domain", params={"domain": "romashka.ru"},
                          opendate=date(2026, 1, 31))
    assert sb.query("SELECT expiredate FROM item WHERE id = %s", (iid,)) == [(date(2027, 1, 31),)]
    sb.prolong_service(iid)
    assert sb.query("SELECT expiredate FROM item WHERE id = %s", (iid,)) == [(date(2028, 1, 31),)]
    sb.set_service_param(iid, "domain", "romashka.рф")
    assert sb.query("SELECT value FROM itemparam WHERE item = %s", (iid,)) == [("romashka.рф",)]
    named = sb.open_service(new.account_id, itemtype="vds", name="Мой сервер")
    sb.set_service_name(iid, "romashka.рф")
    assert sb.query("SELECT id, name FROM item WHERE id IN (%s, %s) ORDER BY id", (iid, named)) == [
        (iid, "romashka.рф"), (named, "Мой сервер")]
    with pytest.raises(LookupError):
        sb.edit_client(10**6, name="nobody")
    with pytest.raises(TypeError):
        sb.edit_payer(pid, vatnum="raw column names are not accepted")


def test_every_suspended_service_says_why_and_no_other_does(sandbox_db):
    """The suspension columns (issue 17.1): one of them 'on' for each suspended item, none for the rest."""
    rows = sandbox_db.query("SELECT status, autosuspend, employeesuspend, abusesuspend FROM item")
    kinds = set()
    for status, *flags in rows:
        assert sum(f == "on" for f in flags) == (1 if status == 3 else 0), (status, flags)
        if status == 3:
            kinds.add(flags.index("on"))
    assert kinds == {0, 1, 2}          # non-payment, by an employee, for abuse: all present


def test_item_names_are_filled_for_domains_only(sandbox_db):
    q = sandbox_db.query
    named = q("SELECT i.name, p.value FROM item i JOIN pricelist pl ON pl.id = i.pricelist "
              "JOIN itemtype it ON it.id = pl.itemtype JOIN itemparam p ON p.item = i.id "
              "AND p.intname = 'domain' WHERE it.intname = 'domain'")
    assert named and all(name == domain for name, domain in named)
    assert q("SELECT COUNT(*) FROM item WHERE name IS NULL")[0][0] > 0


def test_a_sandbox_without_requisite_columns_shows_only_the_confirmed_ones(bare_sandbox_db):
    sb: Sandbox = bare_sandbox_db
    assert sb.summary.requisite_columns is False
    columns = {r[0] for r in sb.query("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = DATABASE() AND table_name = 'profile'")}
    assert columns == {"id", "account", "name", "profiletype"}
    assert dict(sb.query("SELECT profiletype, COUNT(*) FROM profile GROUP BY profiletype")) == (
        sb.summary.payers_by_type)
    # the requisites are still there for mgrctl, and edits reach them the same way
    pid = sb.add_payer(1, name='ООО "Скрытая"', inn="7701234567", country_legal=1)
    sb.edit_payer(pid, kpp="770101001")
    assert sb.query("SELECT name, profiletype FROM profile WHERE id = %s", (pid,)) == [('ООО "Скрытая"', 2)]
    assert sb.query(f"SELECT vatnum, kpp, country_legal FROM {PROFILE_STORE} WHERE id = %s", (pid,)) == [
        ("7701234567", "770101001", 1)]


def test_add_months_clamps_to_month_end():
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)
    assert add_months(date(2024, 12, 15), 12) == date(2025, 12, 15)


def sandbox_cli(db_server, *args: str) -> subprocess.CompletedProcess:
    """``python -m tests.sandbox ARGS`` against the test server."""
    env = {**os.environ, "TEST_DB_HOST": db_server.host, "TEST_DB_PORT": str(db_server.port),
           "TEST_DB_USER": db_server.user, "TEST_DB_PASSWORD": db_server.password}
    return subprocess.run([sys.executable, "-m", "tests.sandbox", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_builds_a_sandbox_and_writes_db_conf(db_server, mgr5_root):
    name = unique_db_name()
    try:
        run = sandbox_cli(db_server, "--clients", "25", "--services", "60", "--db", name, "--seed", "3",
                          "--write-db-conf")
        assert run.returncode == 0, run.stderr
        assert "25 clients" in run.stdout and "60 services" in run.stdout
        settings = load_db_settings()
        assert settings.database == name
        again = sandbox_cli(db_server, "--db", name)
        assert again.returncode == 2 and "--drop" in again.stderr
    finally:
        drop_database(replace(db_server, database=name))


def test_cli_builds_a_sandbox_without_requisite_columns_and_its_mgrctl(db_server, mgr5_root):
    from billmgr_amocrm.mgrctl import Mgrctl
    from billmgr_amocrm.paths import host_paths

    name = unique_db_name()
    try:
        run = sandbox_cli(db_server, "--clients", "20", "--services", "40", "--db", name,
                          "--without-requisite-columns", "--fake-mgrctl")
        assert run.returncode == 0, run.stderr
        assert "without requisite columns" in run.stdout
        mgrctl = Mgrctl.on_host(host_paths())
        assert mgrctl is not None
        assert load_db_settings().database == name      # through the fake's paramlist
        assert mgrctl.call("profile.edit", {"elid": "1"}).findtext("name")
    finally:
        drop_database(replace(db_server, database=name))
