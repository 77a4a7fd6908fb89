"""amoCRM shows what billing holds now (absences included) and leaves managers' work alone.

Against MariaDB (sandbox BILLmanager + module tables) and the amoCRM emulator, through the
real module (``rig``: authorized, initial export requested).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Optional

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.resolve import enqueue_event


def exported(rig: Any) -> Any:
    report = rig.sync()
    assert report.stopped is None, report.stop_reason
    assert report.failed == 0, report.failures
    return report


def field(rig: Any, entity: str, name: str) -> dict[str, Any]:
    return next(f for f in rig.app.amo().custom_fields(entity) if f["name"] == name)


def shown(rig: Any, kind: Kind, billmgr_id: int) -> dict[str, Any]:
    amocrm_id = rig.link(kind, billmgr_id)
    assert amocrm_id is not None, (kind, billmgr_id)
    return rig.entity(kind.amo_entity, amocrm_id)


def values_of(entity: dict[str, Any], field_id: Optional[int] = None, code: str = "") -> Optional[list[Any]]:
    for cf in entity.get("custom_fields_values") or []:
        if (field_id is not None and cf["field_id"] == field_id) or (code and cf.get("field_code") == code):
            return [v["value"] for v in cf["values"]]
    return None


def test_values_cleared_in_billing_are_cleared_in_amocrm_and_unmapped_fields_stay(rig):
    tariff, address = field(rig, "leads", "Тариф"), field(rig, "companies", "Адрес")
    source, position = field(rig, "leads", "Источник"), field(rig, "contacts", "Должность")
    rig.add_rule("fields", {"entity": "lead", "field_id": tariff["id"], "field_type": "text",
                            "value": "service.param.domain"})
    rig.add_rule("fields", {"entity": "company", "field_id": address["id"], "field_type": "textarea",
                            "value": "payer.address_legal"})
    box = rig.sandbox
    account = box.add_client(name="Ясная Поляна", realname="Лев Толстой", email="lev@example.ru",
                             phone="+7 900 111-22-33").account_id
    payer = box.add_payer(account, name='ООО "Ясная"', email="info@yasnaya.ru", phone="+7 495 000-11-22",
                          address_legal="Тула, ул. Ленина, 1")
    item = box.open_service(account, params={"domain": "yasnaya.ru"}, cost=Decimal("990"))
    exported(rig)
    contact, company, lead = shown(rig, Kind.CONTACT, account), shown(rig, Kind.COMPANY, payer), \
        shown(rig, Kind.LEAD, item)
    assert values_of(contact, code="PHONE") == ["+79001112233"]
    assert values_of(contact, code="EMAIL") == ["lev@example.ru"]
    assert (contact["first_name"], contact["last_name"]) == ("Лев", "Толстой")
    assert values_of(company, code="EMAIL") == ["info@yasnaya.ru"]
    assert values_of(company, address["id"]) == ["Тула, ул. Ленина, 1"]
    assert values_of(lead, tariff["id"]) == ["yasnaya.ru"] and lead["price"] == 990
    # managers fill fields the module does not map
    amo = rig.app.amo()
    amo.update("contacts", [{"id": contact["id"], "request_id": "hand", "custom_fields_values": [
        {"field_id": position["id"], "values": [{"value": "Писатель"}]}]}])
    amo.update("leads", [{"id": lead["id"], "request_id": "hand", "custom_fields_values": [
        {"field_id": source["id"], "values": [{"value": "Сайт"}]}]}])
    # billing empties them: the user's phone, email and real name, the payer's email, phone and
    # address, the service's domain parameter and its cost
    box.edit_client(account, phone="", email="", realname="")
    box.edit_payer(payer, email="", phone="", address_legal="", city_legal="", postcode_legal="")
    box.query("DELETE FROM itemparam WHERE item = %s AND intname = 'domain'", (item,))
    box.query("UPDATE item SET cost = NULL WHERE id = %s", (item,))
    service.resync_all(app=rig.app)
    seq = rig.request_seq()
    exported(rig)
    contact, company, lead = shown(rig, Kind.CONTACT, account), shown(rig, Kind.COMPANY, payer), \
        shown(rig, Kind.LEAD, item)
    assert values_of(contact, code="PHONE") is None and values_of(contact, code="EMAIL") is None
    assert (contact["name"], contact["first_name"], contact["last_name"]) == ("Ясная Поляна", "", "")
    assert values_of(company, code="EMAIL") is None and values_of(company, code="PHONE") is None
    assert values_of(company, address["id"]) is None
    assert values_of(lead, tariff["id"]) is None
    assert lead["price"] == 0   # amoCRM's "no budget"; the module sent null, not a made-up 0
    (patch,) = [r for r in rig.requests_since(seq, "PATCH", "/api/v4/leads")
                if any(i["id"] == lead["id"] for i in r["body"])]
    sent = next(i for i in patch["body"] if i["id"] == lead["id"])
    assert sent["price"] is None
    # what no rule maps is never named, so it stays
    assert values_of(contact, position["id"]) == ["Писатель"]
    assert values_of(lead, source["id"]) == ["Сайт"]
    # the same cleared state again is an unchanged re-check: nothing is sent
    rig.app.store.enqueue(Kind.LEAD, item, "reconcile")
    seq = rig.request_seq()
    report = rig.sync()
    assert (report.done, report.unchanged) == (0, 1) and not rig.requests_since(seq)


def test_a_service_with_no_cost_is_created_without_a_price(rig):
    exported(rig)
    account = rig.sandbox.add_client(name="Без цены", email="free@example.ru").account_id
    item = rig.sandbox.open_service(account)
    rig.sandbox.query("UPDATE item SET cost = NULL WHERE id = %s", (item,))
    rig.app.store.enqueue(Kind.CONTACT, account, "edit")
    rig.app.store.enqueue(Kind.LEAD, item, "open")
    seq = rig.request_seq()
    exported(rig)
    (post,) = rig.requests_since(seq, "POST", "/api/v4/leads")
    assert "price" not in post["body"][0]
    assert shown(rig, Kind.LEAD, item)["price"] == 0


def stages(rig: Any) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(main pipeline, a later working stage), (second pipeline, a stage), (main, another stage)."""
    pipelines = rig.app.amo().pipelines()
    main = next(p for p in pipelines if p["is_main"])
    other = next(p for p in pipelines if not p["is_main"])

    def working(pipeline: dict[str, Any]) -> list[int]:
        return [s["id"] for s in pipeline["_embedded"]["statuses"]
                if s["type"] == 0 and s["id"] not in (142, 143)]
    return (main["id"], working(main)[1]), (other["id"], working(other)[-1]), (main["id"], working(main)[2])


def manager_moves(rig: Any, lead_id: int, pipeline_id: int, status_id: int) -> None:
    """A manager drags the lead in amoCRM's UI: a PATCH with a token of amoCRM's own, not the module's."""
    session = rig.emulator.session()
    for _ in range(3):
        # the emulator counts this request against the integration's 7/s, which the module may
        # just have used in full; amoCRM's own UI would not count it, so wait out the second
        answer = session.patch(f"{rig.emulator.url}/api/v4/leads/{lead_id}",
                               json={"pipeline_id": pipeline_id, "status_id": status_id})
        if answer.status_code != 429:
            break
        time.sleep(1.0)
    assert answer.status_code == 200, answer.text


def placement(rig: Any, item: int) -> tuple[int, int]:
    lead = shown(rig, Kind.LEAD, item)
    return lead["pipeline_id"], lead["status_id"]


def tags_of(rig: Any, item: int) -> set[str]:
    lead_id = rig.link(Kind.LEAD, item)
    return {t["name"] for t in rig.app.amo().get("leads", [lead_id])[lead_id]["_embedded"]["tags"]}


def lead_writes(rig: Any, seq: int, lead_id: int) -> list[dict[str, Any]]:
    patches = rig.requests_since(seq, "PATCH", "/api/v4/leads")
    return [i for r in patches for i in r["body"] if i["id"] == lead_id]


def test_a_lead_moves_only_on_create_and_on_events_and_a_managers_move_stands(rig):
    start, renewals, by_hand = stages(rig)
    prolonged = {"value": "service.event", "validator": "equals", "argument": "prolong"}
    rig.add_rule("pipelines", {"pipeline_id": renewals[0], "status_id": renewals[1],
                               "conditions": [prolonged]})
    rig.add_rule("pipelines", {"pipeline_id": start[0], "status_id": start[1]})   # a catch-all
    rig.add_rule("tags", {"entity": "lead", "tag": "продлена", "conditions": [prolonged]})
    box = rig.sandbox
    account = box.add_client(name="Воронка", email="funnel@example.ru").account_id
    item = box.open_service(account, params={"domain": "funnel.ru"})
    exported(rig)
    assert placement(rig, item) == start                   # created: placed by the rules
    box.prolong_service(item)
    rig.app.store.enqueue(Kind.LEAD, item, "prolong")
    exported(rig)
    assert placement(rig, item) == renewals and tags_of(rig, item) == {"продлена"}
    lead_id = rig.link(Kind.LEAD, item)
    # neither a recheck, nor a resync, nor an edit without an event moves it back
    seq = rig.request_seq()
    # the prolonged item is among the reconciler's candidates; compared, it is found as sent
    assert service.reconcile(app=rig.app) == {"contact": 0, "company": 0, "lead": 0}
    rig.app.store.enqueue(Kind.LEAD, item, "reconcile")   # a re-check that reaches the engine
    exported(rig)
    service.resync(Kind.LEAD, [item], app=rig.app)
    exported(rig)
    box.set_service_param(item, "domain", "funnel-2.ru")
    rig.app.store.enqueue(Kind.LEAD, item, "edit")
    exported(rig)
    assert placement(rig, item) == renewals
    assert tags_of(rig, item) == {"продлена"}   # rules keyed on the event answer as on the event
    assert all("pipeline_id" not in w and "status_id" not in w for w in lead_writes(rig, seq, lead_id))
    assert any(w.get("name", "").endswith(f"funnel-2.ru (#{item})") for w in lead_writes(rig, seq, lead_id))
    # a manager moves it by hand: it stays there through a resync of everything and a recheck
    manager_moves(rig, lead_id, *by_hand)
    service.resync_all(app=rig.app)
    exported(rig)
    rig.app.store.enqueue(Kind.LEAD, item, "reconcile")
    exported(rig)
    assert placement(rig, item) == by_hand
    # until the next event the rules react to
    box.prolong_service(item)
    rig.app.store.enqueue(Kind.LEAD, item, "prolong")
    exported(rig)
    assert placement(rig, item) == renewals


def company_of(rig: Any, entity: str, amocrm_id: int) -> Optional[int]:
    embedded = rig.app.amo().get(entity, [amocrm_id])[amocrm_id]["_embedded"]
    companies = embedded.get("companies") or []
    return companies[0]["id"] if companies else None


def test_payers_the_newest_legal_one_is_the_company_and_a_change_reaches_the_leads(rig):
    box = rig.sandbox
    account = box.add_client(name="Два юрлица", email="two@example.ru").account_id
    older = box.add_payer(account, name='ООО "Старое"')
    item = box.open_service(account)
    exported(rig)
    contact, lead = rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item)
    assert company_of(rig, "contacts", contact) == rig.link(Kind.COMPANY, older)
    # a second legal payer: it becomes the client's company, and the lead follows
    newer = box.add_payer(account, name='ООО "Новое"')
    rig.app.store.enqueue(Kind.COMPANY, newer, "edit")
    exported(rig)
    assert company_of(rig, "contacts", contact) == rig.link(Kind.COMPANY, newer)
    assert company_of(rig, "leads", lead) == rig.link(Kind.COMPANY, newer)
    # editing the older payer changes its company but takes nothing from the newer one
    box.edit_payer(older, name='ООО "Старое и правленое"')
    rig.app.store.enqueue(Kind.COMPANY, older, "edit")
    exported(rig)
    assert shown(rig, Kind.COMPANY, older)["name"] == 'ООО "Старое и правленое"'
    assert company_of(rig, "contacts", contact) == rig.link(Kind.COMPANY, newer)
    # the newer payer becomes an individual: its company is unlinked and stays, the older is back
    newer_company = rig.link(Kind.COMPANY, newer)
    box.edit_payer(newer, profiletype=1)
    rig.app.store.enqueue(Kind.COMPANY, newer, "edit")
    exported(rig)
    assert company_of(rig, "contacts", contact) == rig.link(Kind.COMPANY, older)
    assert company_of(rig, "leads", lead) == rig.link(Kind.COMPANY, older)
    kept = rig.entity("companies", newer_company)
    assert kept["name"] == 'ООО "Новое"' and rig.link(Kind.COMPANY, newer) == newer_company
    # the older one too: the client has no company any more, nor have its leads
    box.edit_payer(older, profiletype=3)
    rig.app.store.enqueue(Kind.COMPANY, older, "edit")
    exported(rig)
    assert company_of(rig, "contacts", contact) is None and company_of(rig, "leads", lead) is None
    # a legal entity again: the same company, linked again
    box.edit_payer(newer, profiletype=2)
    rig.app.store.enqueue(Kind.COMPANY, newer, "edit")
    exported(rig)
    assert rig.link(Kind.COMPANY, newer) == newer_company
    assert company_of(rig, "contacts", contact) == newer_company == company_of(rig, "leads", lead)
    assert service.status(app=rig.app).queue_depth == 0


def test_after_the_export_every_client_with_legal_payers_has_its_newest_ones_company(rig):
    exported(rig)
    legal: dict[int, list[int]] = {}
    for account, payer in rig.sandbox.query("SELECT account, id FROM profile WHERE profiletype = 2 "
                                            "ORDER BY account, id"):
        legal.setdefault(int(account), []).append(int(payer))
    several = [a for a, payers in legal.items() if len(payers) > 1]
    assert several, "the sandbox has clients with several legal payers"
    companies = rig.all_links(Kind.COMPANY)
    state = rig.emulator.control.state()
    contact_company = {int(e["entity_id"]): int(e["to_entity_id"]) for e in state["links"]
                       if e["entity_type"] == "contacts" and e["to_entity_type"] == "companies"}
    contacts = rig.all_links(Kind.CONTACT)
    checked = 0
    for account, payers in legal.items():
        if account not in contacts:
            continue
        newest = max(p for p in payers if p in companies)
        assert contact_company.get(contacts[account]) == companies[newest], account
        checked += 1
    assert checked >= len(several)


def test_the_responsible_user_is_set_on_create_and_a_managers_reassignment_stands(rig):
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import save_config

    app = rig.app
    sync = dict(app.config.sync.model_dump(mode="json"), responsible_user_id=504144)
    save_config(rebuild(app.config, {"sync": sync}), app.paths, app.presets)
    app.reload_rules()
    box = rig.sandbox
    account = box.add_client(name="Ответственный", email="owner@example.ru").account_id
    item = box.open_service(account, params={"domain": "owner.ru"})
    exported(rig)
    contact_id, lead_id = rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item)
    assert shown(rig, Kind.CONTACT, account)["responsible_user_id"] == 504144
    assert shown(rig, Kind.LEAD, item)["responsible_user_id"] == 504144
    # a manager hands both to a colleague in amoCRM
    session = rig.emulator.session()
    for entity, amocrm_id in (("contacts", contact_id), ("leads", lead_id)):
        for _ in range(3):
            answer = session.patch(f"{rig.emulator.url}/api/v4/{entity}/{amocrm_id}",
                                   json={"responsible_user_id": 504147})
            if answer.status_code != 429:
                break
            time.sleep(1.0)
        assert answer.status_code == 200, answer.text
    # billing edits, a prolongation, a resync of everything: the colleague keeps them
    seq = rig.request_seq()
    box.edit_client(account, realname="Ответственный Второй")
    rig.app.store.enqueue(Kind.CONTACT, account, "edit")
    box.prolong_service(item)
    rig.app.store.enqueue(Kind.LEAD, item, "prolong")
    exported(rig)
    service.resync_all(app=rig.app)
    exported(rig)
    assert "Второй" in shown(rig, Kind.CONTACT, account)["name"]   # the edit did arrive
    assert shown(rig, Kind.CONTACT, account)["responsible_user_id"] == 504147
    assert shown(rig, Kind.LEAD, item)["responsible_user_id"] == 504147
    writes = [i for r in rig.requests_since(seq, "PATCH") for i in r["body"] if isinstance(r["body"], list)]
    assert writes and all("responsible_user_id" not in w for w in writes)


def test_a_payer_deleted_in_billmanager_takes_its_company_off_the_client_and_the_company_stays(rig):
    box, store, amo = rig.sandbox, rig.app.store, rig.app.amo()
    account = box.add_client(name="Удаляет плательщиков", email="deletes@example.ru").account_id
    older = box.add_payer(account, name='ООО "Первое"')
    newer = box.add_payer(account, name='ООО "Второе"')
    item = box.open_service(account)
    gone_client = box.add_client(name="Уходит совсем", email="leaves@example.ru").account_id
    gone_payer = box.add_payer(gone_client, name='ООО "Ушедшее"')
    box.open_service(gone_client)
    exported(rig)
    contact, lead = rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item)
    older_company, newer_company = rig.link(Kind.COMPANY, older), rig.link(Kind.COMPANY, newer)
    assert company_of(rig, "contacts", contact) == newer_company == company_of(rig, "leads", lead)
    # a manager's own contact linked to the older company: not the module's to undo
    own = amo.create("contacts", [{"name": "Бухгалтер клиента", "request_id": "m1"}]).ids["m1"]
    amo.link("contacts", [{"entity_id": own, "to_entity_id": older_company, "to_entity_type": "companies"}])

    # the client deletes its newer payer in the panel: the hook's event names it
    box.delete_payer(newer)
    enqueue_event({"func": "profile.delete", "elid": str(newer)}, store, rig.app.billing)
    exported(rig)
    assert company_of(rig, "contacts", contact) == older_company == company_of(rig, "leads", lead)
    assert rig.link(Kind.COMPANY, newer) is None
    kept = rig.entity("companies", newer_company)    # the company stays, people's history on it
    assert kept["name"] == 'ООО "Второе"'

    # the older one goes by a path no event reports: the reconciler finds its binding alone
    box.delete_payer(older)
    service.reconcile(app=rig.app)
    exported(rig)
    assert company_of(rig, "contacts", contact) is None and company_of(rig, "leads", lead) is None
    assert rig.link(Kind.COMPANY, older) is None
    assert company_of(rig, "contacts", own) == older_company

    # a client deleted whole: its contact and leads keep their company (a former client's history)
    gone_contact, gone_company = rig.link(Kind.CONTACT, gone_client), rig.link(Kind.COMPANY, gone_payer)
    box.delete_client(gone_client)
    service.reconcile(app=rig.app)
    exported(rig)
    assert company_of(rig, "contacts", gone_contact) == gone_company
    assert rig.link(Kind.COMPANY, gone_payer) is None
    # nothing is left to do, and another reconciler run finds nothing more
    assert service.status(app=rig.app).queue_depth == 0
    assert service.reconcile(app=rig.app).get(Kind.COMPANY.value, 0) == 0


def test_a_deleted_payers_company_leaves_the_client_through_a_refused_read_and_a_lost_answer(rig):
    box, control = rig.sandbox, rig.emulator.control
    account = box.add_client(name="Сбои при удалении", email="faults@example.ru").account_id
    payer = box.add_payer(account, name='ООО "Сбойное"')
    item = box.open_service(account)
    exported(rig)
    contact, lead, company = (rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item),
                              rig.link(Kind.COMPANY, payer))
    box.delete_payer(payer)
    enqueue_event({"func": "profile.delete", "elid": str(payer)}, rig.app.store, rig.app.billing)
    # amoCRM unavailable for the read of the company's links: nothing is unlinked, nothing forgotten
    control.add_fault(action="status", path="^/api/v4/companies$", method="GET", status=503)
    report = rig.sync()
    control.clear_faults()
    assert report.stopped == "retry_later" and rig.link(Kind.COMPANY, payer) == company
    assert company_of(rig, "contacts", contact) == company
    # the unlink applied, its answer lost: the binding stays until an answer says it is done
    control.add_fault(action="after_commit", path="^/api/v4/companies/unlink$", method="POST", status=504,
                      count=1)
    rig.make_due()
    rig.sync()
    assert rig.link(Kind.COMPANY, payer) == company
    rig.make_due()
    exported(rig)
    assert rig.link(Kind.COMPANY, payer) is None
    assert company_of(rig, "contacts", contact) is None and company_of(rig, "leads", lead) is None
    assert service.status(app=rig.app).queue_depth == 0
    assert rig.entity("companies", company)["name"] == 'ООО "Сбойное"'
