"""The first export binds clients to the contacts people already made in amoCRM.

A provider connecting the module has contacts in amoCRM already: made by its managers, web
forms, mail. The export made a second contact for each of those clients, so the sales team
found their deals and notes on one copy and billing's data on the other. Now a client is
bound to a contact that shares an e-mail or a phone with it when neither side has another
candidate (``sync/match.py``). Against MariaDB, the emulator and the module's own set-up; the
matching rule on its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.match import match, matching_pending

from .test_cli import amocrm

REPO = Path(__file__).resolve().parents[2]


def test_a_pair_is_bound_only_when_neither_side_has_another_candidate():
    clients = {
        1: {"email:anna@example.ru", "phone:+79120001122"},
        2: {"email:office@reseller.ru"},
        3: {"email:office@reseller.ru"},          # a mailbox two clients share
        4: {"email:boris@example.ru"},            # two contacts have it
        5: {"phone:+79123334455"},
        6: {"email:vera@example.ru", "phone:+79125556677"},   # e-mail and phone name two contacts
        7: set(),
    }
    contacts = {
        10: {"email:anna@example.ru"},
        11: {"email:office@reseller.ru"},
        12: {"email:boris@example.ru"},
        13: {"email:boris@example.ru", "phone:+70000000000"},
        14: {"phone:+79123334455"},
        15: {"email:vera@example.ru"},
        16: {"phone:+79125556677"},
        17: {"email:nobody@example.ru"},
    }
    found = match(clients, contacts)
    assert found.pairs == {1: 10, 5: 14}
    assert found.shared == 4          # 2, 3, 4 and 6 get contacts of their own
    # a contact two clients reach by different keys is nobody's
    assert match({1: {"email:a@x.ru"}, 2: {"phone:+79990001122"}},
                 {10: {"email:a@x.ru", "phone:+79990001122"}}).pairs == {}


def made_by_a_manager(emulator: Any, name: str, email: Optional[str] = None,
                      phone: Optional[str] = None) -> int:
    fields = []
    if email:
        fields.append({"field_code": "EMAIL", "values": [{"value": email, "enum_code": "WORK"}]})
    if phone:
        fields.append({"field_code": "PHONE", "values": [{"value": phone, "enum_code": "MOB"}]})
    reply = emulator.session().post(f"{emulator.url}/api/v4/contacts",
                                    json=[{"name": name, "custom_fields_values": fields}], timeout=10)
    reply.raise_for_status()
    return int(reply.json()["_embedded"]["contacts"][0]["id"])


def contact(emulator: Any, amocrm_id: int) -> dict[str, Any]:
    for _ in range(20):    # the test's reads share the account's 7 requests a second with the module's
        reply = emulator.session().get(f"{emulator.url}/api/v4/contacts/{amocrm_id}",
                                       params={"with": "leads"}, timeout=10)
        if reply.status_code != 429:
            break
        time.sleep(0.5)
    reply.raise_for_status()
    return dict(reply.json())


def authorize(emulator: Any, mgr5_root: Path, *, match_existing: bool) -> None:
    conf = (REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8")
    if not match_existing:
        conf = conf.replace('"match_existing": true', '"match_existing": false')
    (mgr5_root / "etc" / "amocrm" / "amocrm.conf").write_text(conf, encoding="utf-8")
    integ = emulator.integration
    service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                      integ["auth_code"])


@pytest.mark.parametrize("setting", ["on", "off", "off after the set-up"],
                         ids=["on (the default)", "off", "turned off after the set-up asked for it"])
def test_the_first_export_binds_clients_to_the_contacts_the_managers_made(emulator, sandbox_db, mgr5_root,
                                                                          setting):
    match_existing = setting == "on"
    box = sandbox_db
    anna = box.add_client(name="Анна Петрова", email="Anna.Petrova@Example.ru", phone="8 (912) 000-11-22")
    dima = box.add_client(name="Дмитрий", phone="+7 912 333-44-55")
    boris = box.add_client(name="Борис", email="boris@example.ru")
    reseller = [box.add_client(name=f"Реселлер {n}", email="office@reseller.ru") for n in (1, 2)]
    # what the sales team made before the module came
    anna_made = made_by_a_manager(emulator, "Анна (с сайта)", email="anna.petrova@example.ru")
    dima_made = made_by_a_manager(emulator, "Дима", phone="+79123334455")
    office_made = made_by_a_manager(emulator, "Офис реселлера", email="office@reseller.ru")
    borises = [made_by_a_manager(emulator, n, email="boris@example.ru") for n in ("Борис", "Борис Б.")]
    stranger = made_by_a_manager(emulator, "Незнакомец", email="someone@else.ru")
    deal = emulator.session().post(f"{emulator.url}/api/v4/leads", timeout=10, json=[
        {"name": "Сделка менеджера", "_embedded": {"contacts": [{"id": anna_made}]}}]).json()
    deal_id = int(deal["_embedded"]["leads"][0]["id"])
    managers = {anna_made, dima_made, office_made, *borises, stranger}

    authorize(emulator, mgr5_root, match_existing=setting != "off")
    if setting == "off after the set-up":      # the admin unticks it in Sync settings before the worker runs
        conf = mgr5_root / "etc" / "amocrm" / "amocrm.conf"
        conf.write_text(conf.read_text(encoding="utf-8").replace('"match_existing": true',
                                                                 '"match_existing": false'), encoding="utf-8")
    app = build()
    try:
        assert matching_pending(app.store) is (setting != "off")
        assert service.status(app=app).matching is (setting != "off")
        said = amocrm("status")[1]
        assert ("binding clients to the contacts already in amoCRM (same e-mail or phone)" in said) is \
            (setting != "off")
        report = service.sync_now(app=app)
        assert report.stopped is None and report.failed == 0, report
        assert not matching_pending(app.store)
        links = app.store.links(Kind.CONTACT, list(range(1, 100000)))
        clients = [int(i) for (i,) in box.query("SELECT id FROM account")]
    finally:
        app.close()

    assert set(links) == set(clients)            # every client has its contact
    if match_existing:
        assert links[anna.account_id] == anna_made       # the e-mail, whatever its case
        assert links[dima.account_id] == dima_made       # the phone, however written
        bound = contact(emulator, anna_made)
        assert bound["name"] == "Анна Петрова"           # billing's data from now on
        assert [lead["id"] for lead in bound["_embedded"]["leads"]] == [deal_id]   # the manager's deal stays
    else:
        assert links[anna.account_id] not in managers and links[dima.account_id] not in managers
    # a mailbox two clients share, or two contacts share, binds nobody
    assert not {links[boris.account_id], *(links[r.account_id] for r in reseller)} & managers
    # a contact is bound to one client at most, and the module's contacts are its clients'
    assert len(set(links.values())) == len(links)
    everyone = emulator.control.state()["entities"]["contacts"]
    alive = {int(c["id"]) for c in everyone if not c.get("is_deleted")}
    made = len(clients) - (2 if match_existing else 0)
    assert len(alive) == len(managers) + made
    assert contact(emulator, stranger)["name"] == "Незнакомец"
