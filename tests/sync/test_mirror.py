"""amoCRM shows what billing holds now (absences included) and leaves managers' work alone.

Against MariaDB (sandbox BILLmanager + module tables) and the amoCRM emulator, through the
real module (``rig``: authorized, initial export requested).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Optional

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind


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
    assert rig.sync().done == 1 and not rig.requests_since(seq)


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
