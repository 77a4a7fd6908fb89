"""BillingDb against a real sandbox: snapshots, dirty rows, streaming, lookups."""

from __future__ import annotations

import inspect
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pymysql
import pytest

from billmgr_amocrm import db
from billmgr_amocrm.billing import BillingDb
from billmgr_amocrm.domain import Kind, SuspendKind
from billmgr_amocrm.ports import BillingReader
from tests.sandbox.generate import EMOJI_NAME, HTML_NAME, LONG_NAME, SHARED_PHONE, SQL_NAME


@pytest.fixture
def billing(sandbox_db):
    reader = BillingDb(lambda: db.connect(sandbox_db.settings))
    yield reader
    reader.close()


def test_implements_every_billing_reader_method_with_its_signature():
    for name, proto in inspect.getmembers(BillingReader, inspect.isfunction):
        if name.startswith("_"):
            continue
        impl = getattr(BillingDb, name)
        assert list(inspect.signature(impl).parameters) == list(inspect.signature(proto).parameters), name


def test_client_snapshot_has_all_users_project_and_country(sandbox_db, billing):
    sb = sandbox_db
    new = sb.add_client(name="ООО Ромашка", email="info@romashka.ru", phone="8-900-1234567",
                        realname="Иван Петров", login="romashka", country=1, project=2)
    second = sb.add_user(new.account_id, email="buh@romashka.ru", realname="Бухгалтер", enabled=False)
    client = billing.clients([new.account_id])[new.account_id]
    assert client.name == "ООО Ромашка"
    assert client.country == "Россия"
    assert (client.project_id, client.project_name) == (2, "Second Cloud")
    assert isinstance(client.registration_date, datetime)
    assert [(u.id, u.login, u.email, u.phone, u.realname, u.enabled) for u in client.users] == [
        (new.user_id, "romashka", "info@romashka.ru", "8-900-1234567", "Иван Петров", True),
        (second, f"user{second}", "buh@romashka.ru", "", "Бухгалтер", False)]
    assert client.main_user.id == new.user_id


def test_dirty_clients_come_back_clean_and_whole(sandbox_db, billing):
    d = sandbox_db.summary.dirty
    got = billing.clients([d[k] for k in d if k.startswith("client.")])
    assert len(got) == sum(1 for k in d if k.startswith("client."))
    assert got[d["client.long_name"]].name == LONG_NAME
    assert got[d["client.emoji"]].name == EMOJI_NAME
    assert got[d["client.html"]].name == HTML_NAME
    assert got[d["client.sql"]].name == SQL_NAME
    assert got[d["client.null_name"]].name == ""
    assert got[d["client.no_email"]].users[0].email == ""
    assert got[d["client.no_users"]].users == ()
    assert got[d["client.no_users"]].main_user is None
    assert got[d["client.shared_phone_a"]].users[0].phone == SHARED_PHONE
    assert got[d["client.messy_email"]].users[0].email.startswith("Ivan.Petrov")  # stripped, case kept
    assert got[d["client.control_chars"]].name == "Иван\u200bИванов\tтест"
    disabled = got[d["client.disabled_main_user"]]
    assert not disabled.users[0].enabled and disabled.main_user == disabled.users[1]
    assert got[d["client.no_project"]].project_id is None and got[d["client.no_project"]].country == ""
    assert got[d["client.bad_country"]].country == ""


def test_payer_snapshot_with_requisites(sandbox_db, billing):
    d = sandbox_db.summary.dirty
    full = billing.payers([d["payer.legal_full"]])[d["payer.legal_full"]]
    assert (full.name, full.profiletype, full.inn, full.kpp, full.ogrn) == (
        'ООО "Ромашка"', 2, "7707083893", "773601001", "1027700132195")
    assert full.email == "info@romashka.ru" and full.phone == "+7 (495) 500-55-50"
    assert full.address_legal.count(", ") >= 2
    assert (full.country_legal, full.country_physical, full.country) == ("Россия", "Россия", "Россия")
    pid = sandbox_db.add_payer(1, name="ИП Иванов", profiletype=3, inn="500100732259",
                               postcode_legal="101000", city_legal="Москва", address_legal="ул. Ленина, д. 1",
                               person="Иванов И. И.")
    sole = billing.payers([pid])[pid]
    assert (sole.account_id, sole.profiletype, sole.inn, sole.kpp) == (1, 3, "500100732259", "")
    assert sole.address_legal == "101000, Москва, ул. Ленина, д. 1" and sole.address_postal == ""
    dirty = billing.payers([d["payer.legal_no_inn"], d["payer.null_name"], d["payer.legal_html"]])
    assert dirty[d["payer.legal_no_inn"]].inn == "" and dirty[d["payer.legal_no_inn"]].kpp == ""
    assert dirty[d["payer.null_name"]].name == "" and dirty[d["payer.null_name"]].person == ""
    assert "<script>" in dirty[d["payer.legal_html"]].name


def test_service_snapshot_joins_tariff_type_currency_and_params(sandbox_db, billing):
    acc = sandbox_db.add_client(name="Svc").account_id
    iid = sandbox_db.open_service(acc, itemtype="vhost", pricelist_id=5, opendate=date(2026, 3, 1),
                                  cost=Decimal("590.00"), params={"domain": "shop.ru", "username": "u1"})
    svc = billing.services([iid])[iid]
    assert (svc.account_id, svc.status, svc.pricelist_id) == (acc, 2, 5)
    assert (svc.pricelist_name, svc.itemtype_intname, svc.itemtype_name) == (
        "Хостинг «Бизнес»", "vhost", "Виртуальный хостинг")
    assert (svc.cost, svc.currency_iso, svc.period) == (Decimal("590.0000"), "RUB", 12)
    assert (svc.createdate, svc.opendate, svc.expiredate) == (date(2026, 3, 1), date(2026, 3, 1),
                                                              date(2027, 3, 1))
    assert dict(svc.params) == {"domain": "shop.ru", "username": "u1"}
    # only the itemparams the rules read: fewer rows, same snapshot otherwise
    assert dict(billing.services([iid], params={"domain", "ip"})[iid].params) == {"domain": "shop.ru"}
    assert billing.services([iid], params=set())[iid].params == {}
    assert replace(billing.services([iid], params={"username"})[iid], params={}) == replace(svc, params={})
    # English names, with a fallback to the default name when name_en is empty.
    en = BillingDb(lambda: db.connect(sandbox_db.settings), lang="en")
    try:
        svc_en = en.services([iid])[iid]
        assert (svc_en.pricelist_name, svc_en.itemtype_name) == ("Хостинг «Бизнес»", "Shared hosting")
        other = sandbox_db.open_service(acc, itemtype="vds", pricelist_id=1)
        assert en.services([other])[other].pricelist_name == "VDS-1 (1 vCPU, 1 GB)"
    finally:
        en.close()


def test_dirty_services_do_not_break_snapshots(sandbox_db, billing):
    d = sandbox_db.summary.dirty
    got = billing.services([v for k, v in d.items() if k.startswith("service.")])
    assert len(got) == sum(1 for k in d if k.startswith("service."))
    assert got[d["service.no_params"]].params == {}
    missing = got[d["service.missing_pricelist"]]
    assert (missing.pricelist_id, missing.pricelist_name, missing.itemtype_intname) == (9999, "", "")
    assert got[d["service.null_dates"]].opendate is None and got[d["service.null_dates"]].expiredate is None
    assert got[d["service.zero_date"]].expiredate is None
    assert got[d["service.null_cost"]].cost is None   # no cost, not a made-up 0
    assert got[d["service.null_currency"]].currency_iso == ""
    assert got[d["service.idn_domain"]].params["domain"] == "пример-сайта.рф"
    assert got[d["service.long_param"]].params["note"] == "Ж" * 2000
    assert got[d["service.html_param"]].params["domain"].startswith("<b>")


def test_missing_and_junk_ids_are_absent_not_errors(billing):
    assert billing.clients([10**6, 10**6 + 1]) == {}
    assert billing.payers([]) == {}
    assert billing.services([0, -3, 10**7]) == {}
    assert set(billing.clients([1, 1, 2, 10**6])) == {1, 2}
    assert billing.account_of_user(10**6) is None
    assert billing.newest_payer_of(10**6) is None
    assert billing.legal_payers_by_account([10**6, 0, -1]) == {}
    assert billing.names(Kind.LEAD, [10**6]) == {}


def test_large_id_lists_are_chunked(sandbox_db, billing):
    ids = list(range(1, 1201))  # more than one IN chunk, most of them missing
    assert set(billing.services(ids)) == set(range(1, sandbox_db.summary.services + 1))


def test_iter_ids_streams_keyset_batches(sandbox_db, billing):
    s = sandbox_db.summary
    pages = list(billing.iter_ids(Kind.LEAD, batch=64))
    assert [len(p) for p in pages] == [64, 64, 64, 8]
    assert [i for p in pages for i in p] == list(range(1, s.services + 1))
    assert [i for p in billing.iter_ids(Kind.CONTACT, after_id=25, batch=10) for i in p] == list(
        range(26, s.clients + 1))
    legal = [i for p in billing.iter_ids(Kind.COMPANY, batch=5) for i in p]
    assert len(legal) == s.payers_by_type[2]
    assert legal == sorted(legal)
    assert {p.profiletype for p in billing.payers(legal).values()} == {2}
    exact = list(billing.iter_ids(Kind.LEAD, after_id=s.services - 10, batch=10))
    assert exact == [list(range(s.services - 9, s.services + 1))]


def test_lookups(sandbox_db, billing):
    sb = sandbox_db
    first = sb.add_client(name="A", email="Shared@Example.com", login="alogin")
    second = sb.add_client(name="B", email="shared@example.com")
    assert billing.account_of_user(second.user_id) == second.account_id
    assert billing.account_by_login_or_email("alogin") == first.account_id
    assert billing.account_by_login_or_email(" SHARED@example.com ") == second.account_id  # newest wins
    assert billing.account_by_login_or_email("nobody@example.com") is None
    assert billing.account_by_login_or_email("") is None
    legal = sb.add_payer(first.account_id, profiletype=2, name="ООО А")
    sb.add_payer(first.account_id, profiletype=1, name="Иванов")
    newest = sb.add_payer(first.account_id, profiletype=2, name="ООО Б")
    assert billing.legal_payers_by_account([first.account_id]) == {first.account_id: [legal, newest]}
    other = sb.add_client(name="C")
    other_legal = sb.add_payer(other.account_id, profiletype=2, name="ООО В")
    asked = [first.account_id, other.account_id, second.account_id, 10**6]
    by_account = billing.legal_payers_by_account(asked)
    assert by_account == {first.account_id: [legal, newest], other.account_id: [other_legal]}
    assert billing.legal_payers_by_account([]) == {}
    assert billing.newest_payer_of(first.account_id) == newest


def test_services_by_account(sandbox_db, billing):
    sb = sandbox_db
    first = sb.add_client(name="A").account_id
    second = sb.add_client(name="B").account_id
    items = [sb.open_service(first, itemtype="vds"), sb.open_service(first, itemtype="domain")]
    assert billing.services_by_account([first, second, 10**6]) == {first: sorted(items)}
    assert billing.services_by_account([]) == {}
    expected = {}
    for item_id, account in sb.query("SELECT id, account FROM item ORDER BY id"):
        expected.setdefault(int(account), []).append(int(item_id))
    assert billing.services_by_account(list(expected)) == expected


def test_services_changed_since_sees_opens_and_prolongations(sandbox_db, billing):
    sb = sandbox_db
    since = datetime(2026, 5, 1, 12, 0)
    acc = sb.add_client(name="C").account_id
    opened = sb.open_service(acc, itemtype="vds", opendate=date(2026, 5, 2))
    old = sb.open_service(acc, itemtype="domain", opendate=date(2025, 1, 10))   # expires 2026-01-10
    untouched = sb.open_service(acc, itemtype="domain", opendate=date(2025, 1, 11))
    assert [i for p in billing.services_changed_since(since) for i in p] == [opened]
    sb.prolong_service(old)
    changed = [i for p in billing.services_changed_since(since) for i in p]
    assert changed == [opened, old] and untouched not in changed
    small = BillingDb(lambda: db.connect(sb.settings), changed_batch=1)
    try:
        assert list(small.services_changed_since(since)) == [[opened], [old]]
    finally:
        small.close()


def test_names_for_bindings(sandbox_db, billing):
    d = sandbox_db.summary.dirty
    acc = sandbox_db.add_client(name="Клиент").account_id
    iid = sandbox_db.open_service(acc, itemtype="vds", pricelist_id=1, params={"ip": "10.0.0.1"})
    assert billing.names(Kind.CONTACT, [acc, d["client.null_name"]]) == {
        acc: "Клиент", d["client.null_name"]: f"#{d['client.null_name']}"}
    assert billing.names(Kind.COMPANY, [d["payer.legal_full"]]) == {d["payer.legal_full"]: 'ООО "Ромашка"'}
    assert billing.names(Kind.LEAD, [iid]) == {iid: "VDS-1 (1 vCPU, 1 ГБ) 10.0.0.1"}
    named = sandbox_db.open_service(acc, itemtype="domain", params={"domain": "x.ru"}, name="x.ru (основной)")
    assert billing.names(Kind.LEAD, [named]) == {named: "x.ru (основной)"}


def test_whose_each_entity_is_for_those_that_still_exist(sandbox_db, billing):
    acc = sandbox_db.add_client(name="Чей").account_id
    payer = sandbox_db.add_payer(acc)
    item = sandbox_db.open_service(acc)
    assert billing.accounts_of(Kind.CONTACT, [acc, 10**6]) == {acc: acc}
    assert billing.accounts_of(Kind.COMPANY, [payer, 10**6]) == {payer: acc}
    assert billing.accounts_of(Kind.LEAD, [item]) == {item: acc}
    sandbox_db.delete_payer(payer)
    assert billing.accounts_of(Kind.COMPANY, [payer]) == {}
    assert billing.accounts_of(Kind.LEAD, []) == {}


def test_the_service_name_is_item_name(sandbox_db, billing):
    acc = sandbox_db.add_client(name="Named").account_id
    iid = sandbox_db.open_service(acc, itemtype="vds", name="  Сервер бухгалтерии ")
    assert billing.services([iid])[iid].name == "Сервер бухгалтерии"
    sandbox_db.set_service_name(iid, None)
    assert billing.services([iid])[iid].name == ""
    domain = sandbox_db.summary.dirty["service.idn_domain"]
    assert billing.services([domain])[domain].name == "пример-сайта.рф"   # the generator names domains


def test_factory_connection_sees_new_commits_and_reopens(sandbox_db, billing):
    assert 10**5 not in billing.clients([10**5])
    billing.clients([1])               # opens the connection and reads
    new = sandbox_db.add_client(name="Later")
    assert new.account_id in billing.clients([new.account_id])   # no stale snapshot
    billing.close()
    assert new.account_id in billing.clients([new.account_id])   # reopened


def test_passed_connection_is_used_as_is(sandbox_db):
    conn = db.connect(sandbox_db.settings, autocommit=True)
    reader = BillingDb(conn)
    try:
        assert set(reader.clients([1, 2])) == {1, 2}
        reader.close()
        assert conn.open                # not ours to close
    finally:
        conn.close()


def test_rejects_unknown_language_and_bad_batch(sandbox_db):
    with pytest.raises(ValueError):
        BillingDb(lambda: db.connect(sandbox_db.settings), lang="de; DROP TABLE item")
    reader = BillingDb(lambda: db.connect(sandbox_db.settings))
    with pytest.raises(ValueError):
        next(reader.iter_ids(Kind.LEAD, batch=0))
    reader.close()


def test_unreachable_database_raises_the_driver_error(db_server):
    from dataclasses import replace
    bad = replace(db_server, port=1, database="nope")
    reader = BillingDb(lambda: db.connect(bad, connect_timeout=1))
    with pytest.raises(pymysql.err.OperationalError):
        reader.clients([1])


def test_a_suspended_service_says_why_and_item_statuses_stream_every_item(sandbox_db, billing):
    """Issue 17.1: the suspension kind (item.autosuspend / employeesuspend / abusesuspend) and
    the status scan the reconciler's lifecycle part reads."""
    sb = sandbox_db
    acc = sb.add_client(name="C").account_id
    by_billing, by_employee, for_abuse, active = (sb.open_service(acc) for _ in range(4))
    sb.set_service_status(by_billing, 3, "autosuspend")
    sb.set_service_status(by_employee, 3, "employeesuspend")
    sb.set_service_status(for_abuse, 3, "abusesuspend")
    found = billing.services([by_billing, by_employee, for_abuse, active])
    assert {i: s.suspend_kind for i, s in found.items()} == {
        by_billing: SuspendKind.NONPAYMENT, by_employee: SuspendKind.EMPLOYEE,
        for_abuse: SuspendKind.ABUSE, active: None}
    sb.query("UPDATE item SET autosuspend = 'on', abusesuspend = 'off' WHERE id = %s", (for_abuse,))
    assert billing.services([for_abuse])[for_abuse].suspend_kind is SuspendKind.NONPAYMENT
    sb.set_service_status(by_employee, 2)                       # resumed: the flags are cleared
    assert billing.services([by_employee])[by_employee].suspend_kind is None
    statuses = [row for page in billing.item_statuses(batch=2) for row in page]
    assert statuses == sorted(statuses) and len(statuses) == sb.query("SELECT COUNT(*) FROM item")[0][0]
    expected = {by_billing: 3, by_employee: 2, for_abuse: 3, active: 2}
    assert {i: s for i, s in statuses if i in found} == expected
