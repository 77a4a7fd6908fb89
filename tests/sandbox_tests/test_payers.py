"""Payers read the way BILLmanager exposes them: discovered columns, mgrctl for the rest.

The sandbox holds the same data with and without the requisite columns (``bare_sandbox_db``),
and ``tests.sandbox.fake_mgrctl`` answers ``profile.edit`` from it as BILLmanager's mgrctl
would, so the two ways of reading can be compared payer by payer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest

from billmgr_amocrm import db
from billmgr_amocrm.billing import BillingDb
from billmgr_amocrm.billing.payers import forget_columns, profile_form, select_sql
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.mgrctl import Mgrctl, MgrctlError, MgrctlRefused
from billmgr_amocrm.paths import host_paths
from tests.fixtures.database import (
    SANDBOX_CLIENTS,
    SANDBOX_SEED,
    SANDBOX_SERVICES,
    SANDBOX_TODAY,
    temporary_database,
)
from tests.sandbox import Sandbox, create_sandbox
from tests.sandbox.fake_mgrctl import calls, install_fake_mgrctl


@pytest.fixture(autouse=True)
def _fresh_column_cache() -> Iterator[None]:
    forget_columns()
    yield
    forget_columns()


def reader(sandbox: Sandbox, mgrctl: Mgrctl | None = None) -> BillingDb:
    return BillingDb(lambda: db.connect(sandbox.settings), mgrctl=mgrctl)


def with_fake_mgrctl(sandbox: Sandbox, mgr5_root: Path, **kw: str) -> Mgrctl:
    install_fake_mgrctl(mgr5_root, sandbox.settings, **kw)
    found = Mgrctl.on_host(host_paths(), timeout=5)
    assert found is not None
    return found


def all_payer_ids(sandbox: Sandbox) -> list[int]:
    return [int(r[0]) for r in sandbox.query("SELECT id FROM profile ORDER BY id")]


def legal_ids(sandbox: Sandbox) -> list[int]:
    return [int(r[0]) for r in sandbox.query("SELECT id FROM profile WHERE profiletype = 2 ORDER BY id")]


def test_columns_that_exist_are_read_and_mgrctl_is_not_asked(sandbox_db: Sandbox, mgr5_root: Path) -> None:
    billing = reader(sandbox_db, with_fake_mgrctl(sandbox_db, mgr5_root))
    try:
        payers = billing.payers(all_payer_ids(sandbox_db))
    finally:
        billing.close()
    full = payers[sandbox_db.summary.dirty["payer.legal_full"]]
    assert (full.inn, full.kpp, full.ogrn, full.country_legal) == ("7707083893", "773601001",
                                                                   "1027700132195", "Россия")
    assert calls(mgr5_root) == []


def test_without_requisite_columns_mgrctl_gives_legal_payers_the_same_requisites(
        bare_sandbox_db: Sandbox, db_server: DbSettings, mgr5_root: Path) -> None:
    # One seed, two shapes of the same data: every legal payer must read the same.
    with temporary_database(db_server) as settings:
        create_sandbox(settings, clients=SANDBOX_CLIENTS, services=SANDBOX_SERVICES, seed=SANDBOX_SEED,
                       today=SANDBOX_TODAY, create_db=False)
        by_columns = BillingDb(lambda: db.connect(settings))
        by_mgrctl = reader(bare_sandbox_db, with_fake_mgrctl(bare_sandbox_db, mgr5_root))
        try:
            ids = all_payer_ids(bare_sandbox_db)
            expected, got = by_columns.payers(ids), by_mgrctl.payers(ids)
        finally:
            by_columns.close()
            by_mgrctl.close()
    legal = legal_ids(bare_sandbox_db)
    assert legal and set(got) == set(expected)
    for pid in legal:
        assert got[pid] == expected[pid], pid
    # one profile.edit per legal payer, none for individuals and sole proprietors
    assert sorted(calls(mgr5_root)) == sorted(f"profile.edit elid={pid}" for pid in legal)
    other = next(pid for pid in ids if pid not in legal)
    assert (got[other].name, got[other].profiletype) == (expected[other].name, expected[other].profiletype)
    assert got[other].inn == "" and got[other].country_legal == ""


def test_without_columns_or_mgrctl_requisites_are_empty_and_said_once(
        bare_sandbox_db: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    billing = reader(bare_sandbox_db)
    caplog.set_level(logging.WARNING, logger="billmgr_amocrm.billing.payers")
    try:
        pid = bare_sandbox_db.summary.dirty["payer.legal_full"]
        payer = billing.payers([pid])[pid]
        billing.payers([pid])
        names = billing.names(Kind.COMPANY, [pid])
    finally:
        billing.close()
    assert (payer.name, payer.profiletype, payer.inn, payer.person, payer.country) == (
        'ООО "Ромашка"', 2, "", "", "")
    assert names == {pid: 'ООО "Ромашка"'}
    warnings = [r for r in caplog.records if "no column for" in r.getMessage()]
    assert len(warnings) == 1 and "vatnum" not in warnings[0].getMessage()   # says the requisites' names
    assert all(f" {name}," in warnings[0].getMessage() for name in ("inn", "kpp", "email", "country_legal"))


def test_mgrctl_fills_only_what_the_columns_lack(sandbox_db: Sandbox, mgr5_root: Path) -> None:
    # KPP and OGRN are per-country parameters: a host may have the rest as columns but not them.
    pid = sandbox_db.add_payer(1, name="ООО Вектор", inn="7701234567", kpp="770101001", ogrn="1027700000000",
                               country_legal=5)
    with sandbox_db.conn.cursor() as cur:
        cur.execute("CREATE TABLE sandbox_profile_full AS SELECT * FROM profile")   # what the panel shows
        cur.execute("ALTER TABLE profile DROP COLUMN kpp, DROP COLUMN ogrn")          # what the table has
    billing = reader(sandbox_db, with_fake_mgrctl(sandbox_db, mgr5_root))
    try:
        payer = billing.payers([pid])[pid]
    finally:
        billing.close()
    assert (payer.inn, payer.kpp, payer.ogrn, payer.country_legal) == (
        "7701234567", "770101001", "1027700000000", "Германия")
    assert calls(mgr5_root) == [f"profile.edit elid={pid}"]


def test_both_countries_are_read_and_contact_data_uses_the_right_one(sandbox_db: Sandbox) -> None:
    legal = sandbox_db.add_payer(1, profiletype=2, name="Foreign GmbH", country_legal=5, country_physical=1)
    person = sandbox_db.add_payer(1, profiletype=1, name="Иванов", country_legal=5, country_physical=1)
    only_postal = sandbox_db.add_payer(1, profiletype=2, name="ООО Без адреса", country_physical=4)
    billing = reader(sandbox_db)
    try:
        got = billing.payers([legal, person, only_postal])
    finally:
        billing.close()
    assert (got[legal].country_legal, got[legal].country_physical, got[legal].country) == (
        "Германия", "Россия", "Германия")
    assert got[person].country == "Россия"            # an individual: the postal address's
    assert got[only_postal].country == "США"          # the other one when that one is empty


def test_the_sql_names_only_columns_that_exist() -> None:
    sql, held = select_sql(frozenset({"id", "account", "name", "profiletype", "vatnum", "country_legal"}))
    assert held == ("inn", "country_legal")
    assert "p.vatnum" in sql and "person" not in sql and "kpp" not in sql
    assert "LEFT JOIN country c1 ON c1.id = p.country_legal" in sql


def test_mgrctl_failures_raise_without_its_output(bare_sandbox_db: Sandbox, mgr5_root: Path) -> None:
    pid = bare_sandbox_db.summary.dirty["payer.legal_full"]
    for fault, error in (("garbage", MgrctlError), ("exit", MgrctlError), ("refuse", MgrctlRefused)):
        billing = reader(bare_sandbox_db, with_fake_mgrctl(bare_sandbox_db, mgr5_root, fault=fault))
        try:
            with pytest.raises(error) as caught:
                billing.payers([pid])
        finally:
            billing.close()
        assert "leaked" not in str(caught.value) and "profile.edit" in str(caught.value)


def test_a_payer_mgrctl_does_not_know_has_no_requisites(bare_sandbox_db: Sandbox, mgr5_root: Path) -> None:
    mgrctl = with_fake_mgrctl(bare_sandbox_db, mgr5_root)
    assert profile_form(mgrctl, 10**6, ("inn", "kpp")) == {}
    pid = bare_sandbox_db.summary.dirty["payer.legal_full"]
    assert profile_form(mgrctl, pid, ("inn", "kpp", "country_legal")) == {
        "inn": "7707083893", "kpp": "773601001", "country_legal": "1"}


def test_a_slow_mgrctl_times_out(bare_sandbox_db: Sandbox, mgr5_root: Path) -> None:
    install_fake_mgrctl(mgr5_root, bare_sandbox_db.settings, fault="slow")
    slow = Mgrctl.on_host(host_paths(), timeout=0.5)
    assert slow is not None
    with pytest.raises(MgrctlError, match="no answer in 0.5 s"):
        slow.call("profile.edit", {"elid": "1"})
