"""RuleSet payloads: golden bodies for contact, company and lead; pipelines, tags, fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Dict, List, Optional

import pytest

from billmgr_amocrm.domain import Client, ClientUser, Kind, ServiceEvent
from billmgr_amocrm.ports import MappingContext
from billmgr_amocrm.rules.errors import ConfigError
from billmgr_amocrm.rules.fieldvalues import field_values
from billmgr_amocrm.rules.mapping import RuleSet, lead_price, split_person_name
from billmgr_amocrm.rules.presets import Presets

from .samples import CLIENT, PAYER, SERVICE, make_config

NO_MARKERS = MappingContext(marker_field_ids={})


def cond(value: str, validator: str, argument: Optional[str] = None) -> Dict[str, Any]:
    return {"value": value, "validator": validator, "argument": argument}


def frule(rule_id: str, entity: str, field_id: int, field_type: str, value: str,
          **extra: Any) -> Dict[str, Any]:
    return {"id": rule_id, "entity": entity, "field_id": field_id, "field_type": field_type, "value": value,
            **extra}


@pytest.fixture(scope="module")
def rules(presets: Presets) -> RuleSet:
    config = make_config(
        presets,
        sync={"responsible_user_id": 77, "marker_field_ids": {"contact": 900, "company": 901, "lead": 902}},
        tags=[{"id": "t1", "entity": "lead", "tag": "vps",
               "conditions": [cond("service.type", "equals", "vds")]},
              {"id": "t2", "entity": "lead", "tag": "prolonged",
               "conditions": [cond("service.event", "equals", "prolong")]},
              {"id": "t3", "entity": "contact", "tag": "billmanager"}],
        fields=[frule("f1", "company", 501, "text", "payer.inn"),
                frule("f2", "company", 502, "text", "payer.kpp"),
                frule("f3", "company", 503, "textarea", "payer.address_legal"),
                frule("f4", "lead", 601, "url", "service.param.domain"),
                frule("f5", "lead", 602, "date", "service.expiredate"),
                frule("f6", "lead", 603, "select", "service.status", enum_map={"2": 7001, "3": 7002}),
                frule("f7", "lead", 604, "text", "service.status")],
        pipelines=[{"id": "p1", "pipeline_id": 10, "status_id": 11,
                    "conditions": [cond("service.type", "equals", "domain")]},
                   {"id": "p2", "pipeline_id": 20, "status_id": 21,
                    "conditions": [cond("service.cost", "greater", "1000")]},
                   {"id": "p3", "pipeline_id": 30, "status_id": 31}])
    return RuleSet(config, presets)


def test_contact_payload(rules: RuleSet) -> None:
    payload = rules.payload(Kind.CONTACT, CLIENT, NO_MARKERS)
    assert payload.body == {
        "name": "Петров Иван Иванович", "first_name": "Иван", "last_name": "Петров",
        "responsible_user_id": 77,
        "custom_fields_values": [
            # both users' phones are the same number; "12-34" is dirty and dropped
            {"field_code": "PHONE", "values": [{"value": "+79001234567", "enum_code": "WORK"}]},
            # the disabled user's address is not the client's contact data
            {"field_code": "EMAIL", "values": [{"value": "ivan@example.com", "enum_code": "WORK"},
                                               {"value": "buh@example.com", "enum_code": "WORK"}]},
            {"field_id": 900, "values": [{"value": "billmgr:contact:42"}]},
        ],
    }
    assert payload.tags == ("billmanager",) and payload.managed_tags == ("billmanager",)


def test_company_payload(rules: RuleSet) -> None:
    payload = rules.payload(Kind.COMPANY, PAYER, MappingContext(marker_field_ids={Kind.COMPANY: 333}))
    assert payload.body == {
        "name": "ООО «Ромашка»", "responsible_user_id": 77,
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": "+74951112233", "enum_code": "WORK"}]},
            {"field_code": "EMAIL", "values": [{"value": "info@romashka.ru", "enum_code": "WORK"}]},
            {"field_id": 501, "values": [{"value": "7701234567"}]},
            {"field_id": 502, "values": [{"value": "770101001"}]},
            {"field_id": 503, "values": [{"value": "Москва, ул. Ленина, 1"}]},
            {"field_id": 333, "values": [{"value": "billmgr:company:5"}]},   # the context's marker wins
        ],
    }
    assert payload.tags == () and payload.managed_tags == ()


def test_lead_payload(rules: RuleSet) -> None:
    ctx = MappingContext(marker_field_ids={}, event=ServiceEvent.PROLONG, default_responsible_user_id=5)
    payload = rules.payload(Kind.LEAD, SERVICE, ctx)
    assert payload.body == {
        "name": "Виртуальный сервер VDS-2 — example.com (#1234)",
        "price": 1500,                       # 1499.50 rounded half up
        "responsible_user_id": 5,
        "custom_fields_values": [
            {"field_id": 601, "values": [{"value": "https://example.com"}]},
            {"field_id": 602, "values": [{"value": 1717286400}]},   # 2024-06-02 00:00 UTC
            {"field_id": 603, "values": [{"enum_id": 7001}]},
            {"field_id": 604, "values": [{"value": "Активна"}]},
            {"field_id": 902, "values": [{"value": "billmgr:lead:1234"}]},
        ],
    }
    assert payload.placement == (20, 21)   # p1 does not match, p2 does, p3 is never reached
    assert payload.tags == ("vps", "prolonged")
    assert payload.managed_tags == ("vps", "prolonged")
    for forbidden in ("created_by", "updated_by", "_embedded", "tags_to_add"):
        assert forbidden not in payload.body


def test_what_billing_no_longer_holds_is_cleared_and_unmapped_fields_are_never_named(rules: RuleSet) -> None:
    emptied = replace(PAYER, email="", phone="", kpp="", address_legal="")
    fields = rules.payload(Kind.COMPANY, emptied, NO_MARKERS).body["custom_fields_values"]
    assert fields == [
        {"field_code": "PHONE", "values": None},                 # amoCRM clears a field with null
        {"field_code": "EMAIL", "values": None},
        {"field_id": 501, "values": [{"value": "7701234567"}]},
        {"field_id": 502, "values": None},
        {"field_id": 503, "values": None},
        {"field_id": 901, "values": [{"value": "billmgr:company:5"}]},
    ]
    # the domain param deleted, a status no select option maps, the cost gone
    bare = replace(SERVICE, params={}, status=5, cost=None)
    body = rules.payload(Kind.LEAD, bare, NO_MARKERS).body
    assert body["price"] is None
    assert body["custom_fields_values"] == [
        {"field_id": 601, "values": None},
        {"field_id": 602, "values": [{"value": 1717286400}]},
        {"field_id": 603, "values": None},
        {"field_id": 604, "values": [{"value": "В обработке"}]},
        {"field_id": 902, "values": [{"value": "billmgr:lead:1234"}]},
    ]
    nameless = Client(id=42, name="Acc", users=(ClientUser(id=1, login="l", realname="Мадонна"),))
    assert rules.payload(Kind.CONTACT, nameless, NO_MARKERS).body["last_name"] == ""


def test_a_field_whose_rules_no_longer_hold_is_cleared(presets: Presets) -> None:
    rules = RuleSet(make_config(presets, fields=[
        frule("f1", "lead", 7, "text", "service.param.domain",
              conditions=[cond("service.type", "equals", "domain")])]), presets)
    fields = rules.payload(Kind.LEAD, SERVICE, NO_MARKERS).body["custom_fields_values"]
    assert fields == [{"field_id": 7, "values": None}]


def test_tags_that_no_longer_apply_stay_managed(rules: RuleSet) -> None:
    opened = rules.payload(Kind.LEAD, replace(SERVICE, itemtype_intname="vhost"),
                           MappingContext(marker_field_ids={}, event=ServiceEvent.OPEN))
    assert opened.tags == ()
    assert set(opened.managed_tags) == {"vps", "prolonged"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"itemtype_intname": "domain"}, (10, 11)),
    ({"cost": Decimal("1000")}, (30, 31)),
    ({"cost": Decimal("5000")}, (20, 21)),
])
def test_pipeline_first_match_wins(rules: RuleSet, changes: Dict[str, Any], expected: Any) -> None:
    payload = rules.payload(Kind.LEAD, replace(SERVICE, **changes), NO_MARKERS)
    assert payload.placement == expected
    assert "pipeline_id" not in payload.body and "status_id" not in payload.body


def test_no_matching_pipeline_rule_leaves_amocrm_default(presets: Presets) -> None:
    rules = RuleSet(make_config(presets, pipelines=[
        {"id": "p1", "pipeline_id": 10, "status_id": 11,
         "conditions": [cond("service.type", "equals", "x")]}]),
        presets)
    payload = rules.payload(Kind.LEAD, SERVICE, NO_MARKERS)
    assert payload.placement is None
    assert "pipeline_id" not in payload.body and "responsible_user_id" not in payload.body


def test_sync_conditions_and_legal_entities_only(presets: Presets) -> None:
    rules = RuleSet(make_config(presets, conditions={
        "lead": [{"id": "c1", **cond("service.status", "equals", "2")},
                 {"id": "c2", **cond("service.param.domain", "regex", r"\.com$")}],
        "contact": [{"id": "c3", **cond("client.email", "not_empty")}]}), presets)
    assert rules.wants(Kind.LEAD, SERVICE)
    assert not rules.wants(Kind.LEAD, replace(SERVICE, status=3))
    assert not rules.wants(Kind.LEAD, replace(SERVICE, params={}))
    assert rules.wants(Kind.CONTACT, CLIENT)
    assert not rules.wants(Kind.CONTACT, Client(id=1, name="x"))
    assert rules.wants(Kind.COMPANY, PAYER)
    assert not rules.wants(Kind.COMPANY, replace(PAYER, profiletype=1))


def test_the_event_is_a_condition_value(presets: Presets) -> None:
    rules = RuleSet(make_config(presets, conditions={
        "lead": [{"id": "c1", **cond("service.event", "equals", "open")}]}), presets)
    assert rules.wants(Kind.LEAD, SERVICE, ServiceEvent.OPEN)
    assert not rules.wants(Kind.LEAD, SERVICE, ServiceEvent.PROLONG)


def test_first_matching_field_rule_for_a_field_wins(presets: Presets) -> None:
    rules = RuleSet(make_config(presets, fields=[
        frule("f1", "lead", 7, "text", "service.param.domain",
              conditions=[cond("service.type", "equals", "domain")]),
        frule("f2", "lead", 7, "text", "service.pricelist"),
        frule("f3", "lead", 8, "numeric", "service.param.domain"),
    ]), presets)
    fields = rules.payload(Kind.LEAD, SERVICE, NO_MARKERS).body["custom_fields_values"]
    # a numeric field with a non-number value is cleared, not sent wrong
    assert fields == [{"field_id": 7, "values": [{"value": "VDS-2"}]}, {"field_id": 8, "values": None}]


def test_an_invalid_config_cannot_become_a_ruleset(presets: Presets) -> None:
    config = make_config(presets).model_copy(update={"tags": ()})
    bad = config.model_copy(update={"pipelines": make_config(presets, pipelines=[
        {"id": "p1", "pipeline_id": 1, "status_id": 2}]).pipelines * 2})
    with pytest.raises(ConfigError, match="used twice"):
        RuleSet(bad, presets)


@pytest.mark.parametrize(("field_type", "raw", "enum_map", "expected"), [
    ("text", "  a\x00b\n c ", {}, [{"value": "ab c"}]),
    ("text", "", {}, None),
    ("text", None, {}, None),
    ("text", True, {}, [{"value": "да"}]),
    ("text", date(2024, 5, 1), {}, [{"value": "01.05.2024"}]),
    ("numeric", Decimal("12.50"), {}, [{"value": "12.50"}]),
    ("numeric", "12,5", {}, [{"value": "12.5"}]),
    ("numeric", "n/a", {}, None),
    ("checkbox", True, {}, [{"value": True}]),
    ("checkbox", "нет", {}, [{"value": False}]),
    ("checkbox", "maybe", {}, None),
    ("select", "vds", {"vds": 11, "vhost": "Хостинг"}, [{"enum_id": 11}]),
    ("select", "VHOST", {"vds": 11, "vhost": "Хостинг"}, [{"value": "Хостинг"}]),
    ("select", "dedic", {"vds": 11}, None),
    ("select", "dedic", {}, [{"value": "dedic"}]),
    ("multiselect", "vds, vhost, vds, other", {"vds": 11, "vhost": 12}, [{"enum_id": 11}, {"enum_id": 12}]),
    ("multiselect", "other", {"vds": 11}, None),
    ("date", date(2024, 1, 1), {}, [{"value": 1704067200}]),
    ("date_time", "2024-01-01", {}, [{"value": 1704067200}]),
    ("birthday", "garbage", {}, None),
    ("url", "https://x.ru/a", {}, [{"value": "https://x.ru/a"}]),
    ("url", "x.ru", {}, [{"value": "https://x.ru"}]),
    ("url", "not a url", {}, None),
])
def test_field_value_formatting(field_type: str, raw: Any, enum_map: Dict[str, Any],
                                expected: Optional[List[Dict[str, Any]]]) -> None:
    assert field_values(field_type, raw, None, enum_map, "ru") == expected


def test_long_and_dirty_names_are_cleaned_and_truncated_keeping_the_id(presets: Presets) -> None:
    rules = RuleSet(make_config(presets), presets)
    long_service = replace(SERVICE, itemtype_name="<b>VPS</b>\t😀 " + "x" * 400, pricelist_name="")
    name = rules.payload(Kind.LEAD, long_service, NO_MARKERS).body["name"]
    assert len(name) == 255 and name.endswith("… (#1234)") and name.startswith("<b>VPS</b> 😀 x")
    client = Client(id=3, name="acc", users=(ClientUser(id=1, login="l", realname="\x07Bell\u200dy\x1b"),))
    assert rules.payload(Kind.CONTACT, client, NO_MARKERS).body["name"] == "Bell\u200dy"


def test_contact_name_falls_back_to_account_then_login(presets: Presets) -> None:
    rules = RuleSet(make_config(presets), presets)
    assert rules.payload(Kind.CONTACT, Client(id=3, name="Acc"), NO_MARKERS).body == {
        "name": "Acc", "first_name": "", "last_name": "",
        "custom_fields_values": [{"field_code": "PHONE", "values": None},
                                 {"field_code": "EMAIL", "values": None}]}
    nameless = Client(id=3, name=" ", users=(ClientUser(id=1, login="vasya"),))
    assert rules.payload(Kind.CONTACT, nameless, NO_MARKERS).body["name"] == "vasya"


@pytest.mark.parametrize(("full", "expected"), [
    ("Иван Петров", ("Иван", "Петров")),
    ("Петров Иван Иванович", ("Иван", "Петров")),
    ("Петрова Анна Сергеевна", ("Анна", "Петрова")),
    ("John Ronald Tolkien", ("John", "Ronald Tolkien")),
    ("Madonna", ("Madonna", "")),
    ("", ("", "")),
])
def test_person_name_split(full: str, expected: Any) -> None:
    assert split_person_name(full) == expected


@pytest.mark.parametrize(("cost", "price"), [
    (Decimal("0.49"), 0), (Decimal("0.5"), 1), (Decimal("-5"), 0), (Decimal("1e12"), 2_147_483_647),
    (Decimal("1e28"), 2_147_483_647), (Decimal("2147483646.5"), 2_147_483_647),
    (Decimal("NaN"), None), (None, None), (Decimal("0"), 0),
])
def test_lead_price(cost: Any, price: Optional[int]) -> None:
    assert lead_price(cost) == price


def test_wants_then_payload_computes_the_attributes_once(rules: RuleSet,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner asks wants() and then payload() for each snapshot: one attributes_of call,
    and a different snapshot (or event) is never served the previous one's attributes."""
    import billmgr_amocrm.rules.mapping as mapping

    calls: List[Any] = []
    real = mapping.attributes_of

    def counting(kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> Dict[str, Any]:
        calls.append(entity)
        return real(kind, entity, event)

    monkeypatch.setattr(mapping, "attributes_of", counting)
    ctx = MappingContext(marker_field_ids={})
    assert rules.wants(Kind.LEAD, SERVICE)
    first = rules.payload(Kind.LEAD, SERVICE, ctx)
    assert calls == [SERVICE]
    other = replace(SERVICE, id=SERVICE.id + 1)
    assert rules.wants(Kind.LEAD, other)
    second = rules.payload(Kind.LEAD, other, ctx)
    assert calls == [SERVICE, other]
    assert f"#{SERVICE.id + 1}" in second.body["name"] and first.body["name"] != second.body["name"]
    prolong = MappingContext(marker_field_ids={}, event=ServiceEvent.PROLONG)
    prolonged = rules.payload(Kind.LEAD, other, prolong)
    assert len(calls) == 3 and "prolonged" in prolonged.tags


def test_param_names_cover_every_itemparam_a_rule_can_read(presets: Presets) -> None:
    config = make_config(presets, fields=[
        frule("f1", "lead", 5001, "url", "service.param.domain")])
    names = RuleSet(config, presets).param_names
    assert names is not None
    assert {"domain", "hostname", "ip"} <= names          # the service name's params
    preset_params = {v.path[len("param."):] for v in presets.values.values() if v.path.startswith("param.")}
    assert preset_params <= names                          # every preset value a rule can name
    assert "ostempl" not in names and "username" not in names


def test_a_service_read_with_only_those_params_maps_to_the_same_payload(presets: Presets) -> None:
    config = make_config(presets, sync={"marker_field_ids": {"contact": 900, "company": 901, "lead": 902}},
                         tags=[{"id": "t1", "entity": "lead", "tag": "vps",
                                "conditions": [cond("service.param.domain", "not_empty")]}],
                         fields=[frule("f1", "lead", 5001, "url", "service.param.domain")])
    rules = RuleSet(config, presets)
    assert rules.param_names is not None
    rich = replace(SERVICE, params={**SERVICE.params, "ostempl": "Debian 12", "username": "root",
                                    "ns0": "ns1.example.net"})
    lean = replace(rich, params={k: v for k, v in rich.params.items() if k in rules.param_names})
    ctx = NO_MARKERS
    assert rules.payload(Kind.LEAD, lean, ctx) == RuleSet(config, presets).payload(Kind.LEAD, rich, ctx)
    assert rules.wants(Kind.LEAD, lean) == rules.wants(Kind.LEAD, rich)


def _link_values(payload: Any, field_id: int) -> Any:
    found = [f for f in payload.body.get("custom_fields_values") or [] if f.get("field_id") == field_id]
    return found[0]["values"] if found else "absent"


def test_contacts_and_leads_carry_the_link_back_to_billmanager(presets: Presets) -> None:
    """Issue 17.4: the url field holds the admin panel's form of the client / the service; with no
    base URL it is cleared; payers have none; a field rule naming the same field wins."""
    ids = {"contact": 950, "lead": 951}
    linked = RuleSet(make_config(presets, sync={"billmgr_url": "https://bill.example.com/billmgr",
                                                "url_field_ids": ids}), presets)
    assert _link_values(linked.payload(Kind.CONTACT, CLIENT, NO_MARKERS), 950) == [
        {"value": f"https://bill.example.com/billmgr?startform=account.edit&elid={CLIENT.id}"}]
    assert _link_values(linked.payload(Kind.LEAD, SERVICE, NO_MARKERS), 951) == [
        {"value": f"https://bill.example.com/billmgr?startform=item.edit&elid={SERVICE.id}"}]
    assert _link_values(linked.payload(Kind.COMPANY, PAYER, NO_MARKERS), 950) == "absent"
    # the ids may come from the mapping context (fields made in this run) as well
    fresh = RuleSet(make_config(presets, sync={"billmgr_url": "https://bill.example.com"}), presets)
    ctx = MappingContext(marker_field_ids={}, url_field_ids={Kind.LEAD: 960})
    assert _link_values(fresh.payload(Kind.LEAD, SERVICE, ctx), 960) == [
        {"value": f"https://bill.example.com/billmgr?startform=item.edit&elid={SERVICE.id}"}]
    assert _link_values(fresh.payload(Kind.LEAD, SERVICE, NO_MARKERS), 960) == "absent"   # no field yet
    cleared = RuleSet(make_config(presets, sync={"billmgr_url": "", "url_field_ids": ids}), presets)
    assert _link_values(cleared.payload(Kind.LEAD, SERVICE, NO_MARKERS), 951) is None
    ruled = RuleSet(make_config(presets, sync={"billmgr_url": "https://bill.example.com",
                                               "url_field_ids": ids},
                                fields=[frule("f1", "lead", 951, "url", "service.param.domain")]), presets)
    assert _link_values(ruled.payload(Kind.LEAD, SERVICE, NO_MARKERS), 951) == [
        {"value": f"https://{SERVICE.params['domain']}"}]      # the rule's value, not the link
