"""What public sources settle about BILLmanager, as the rules see it: a payer's two countries
(the legal one for a legal entity's phones) and the service's own name (``item.name``)."""

from __future__ import annotations

from dataclasses import replace

from billmgr_amocrm.domain import Kind, Payer
from billmgr_amocrm.ports import MappingContext
from billmgr_amocrm.rules.attributes import attributes_of
from billmgr_amocrm.rules.mapping import RuleSet, lead_name
from billmgr_amocrm.rules.presets import Presets

from .samples import PAYER, SERVICE, make_config

NO_MARKERS = MappingContext(marker_field_ids={})


def phones(rules: RuleSet, payer: Payer) -> list[str]:
    body = rules.payload(Kind.COMPANY, payer, NO_MARKERS).body
    found = [f for f in body.get("custom_fields_values", []) if f.get("field_code") == "PHONE"]
    return [v["value"] for f in found for v in f["values"]]


def test_a_payer_has_two_countries_and_its_contact_country_follows_its_type() -> None:
    legal = Payer(id=1, account_id=1, name="GmbH", profiletype=2, country_legal="Германия",
                  country_physical="Россия")
    attrs = attributes_of(Kind.COMPANY, legal)
    assert (attrs["country_legal"], attrs["country_physical"], attrs["country"]) == (
        "Германия", "Россия", "Германия")
    sole = replace(legal, profiletype=3)
    assert attributes_of(Kind.COMPANY, sole)["country"] == "Германия"
    person = replace(legal, profiletype=1)
    assert attributes_of(Kind.COMPANY, person)["country"] == "Россия"
    assert replace(legal, country_legal="").country == "Россия"        # the other one when empty
    assert replace(person, country_physical="").country == "Германия"


def test_a_legal_entitys_phone_is_read_with_its_legal_address_country(presets: Presets) -> None:
    rules = RuleSet(make_config(presets), presets)
    trunk = replace(PAYER, phone="8 (495) 111-22-33")
    # in Russia 8 is the trunk prefix: +7 ...; in Germany the same digits are not a Russian number
    russian = replace(trunk, country_legal="Россия", country_physical="Германия")
    german = replace(trunk, country_legal="Германия", country_physical="Россия")
    assert phones(rules, russian) == ["+74951112233"]
    assert phones(rules, german) == ["+84951112233"]


def test_the_lead_is_named_by_item_name_when_billmanager_filled_it(presets: Presets) -> None:
    rules = RuleSet(make_config(presets), presets)
    named = replace(SERVICE, name="  Сервер <b>бухгалтерии</b>\t")
    assert rules.payload(Kind.LEAD, named, NO_MARKERS).body["name"] == "Сервер <b>бухгалтерии</b> (#1234)"
    # empty: the name built from type, tariff and what the service serves, as before
    assert rules.payload(Kind.LEAD, replace(SERVICE, name=""), NO_MARKERS).body["name"] == (
        "Виртуальный сервер VDS-2 — example.com (#1234)")
    assert attributes_of(Kind.LEAD, named)["name"] == "Сервер <b>бухгалтерии</b>"
    long = lead_name({"name": "Я" * 400, "id": 7})
    assert long.endswith(" (#7)") and len(long) <= 255
