"""Snapshots -> named attributes: complete for good data, total for dirty data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from billmgr_amocrm.domain import Client, Kind, Payer, Service, ServiceEvent
from billmgr_amocrm.rules.attributes import ATTRIBUTE_KEYS, PRESET_KIND_OF, attributes_of
from billmgr_amocrm.rules.presets import Presets

from .samples import CLIENT, PAYER, SERVICE


def test_client_attributes_come_from_the_account_and_its_main_user() -> None:
    attrs = attributes_of(Kind.CONTACT, CLIENT)
    assert attrs["name"] == "ООО Ромашка (аккаунт)"
    assert attrs["realname"] == "Петров Иван Иванович"
    assert attrs["email"] == "Ivan@Example.COM"
    assert attrs["registration_date"] == date(2024, 3, 1)
    assert attrs["project"] == "Hoster" and attrs["users_count"] == 3


def test_payer_attributes() -> None:
    attrs = attributes_of(Kind.COMPANY, PAYER)
    assert (attrs["type"], attrs["inn"], attrs["kpp"]) == (2, "7701234567", "770101001")


def test_service_attributes_include_event_params_and_types() -> None:
    attrs = attributes_of(Kind.LEAD, SERVICE, ServiceEvent.PROLONG)
    assert attrs["event"] == "prolong"
    assert attrs["type"] == "vds" and attrs["currency"] == "RUB"
    assert attrs["cost"] == Decimal("1499.50") and attrs["autoprolong"] is True
    assert attrs["param.domain"] == "example.com" and attrs["param.ostempl"] == "debian"
    assert attributes_of(Kind.LEAD, SERVICE)["event"] is None


@pytest.mark.parametrize("kind", list(Kind))
def test_every_declared_key_is_present(kind: Kind) -> None:
    sample = {Kind.CONTACT: CLIENT, Kind.COMPANY: PAYER, Kind.LEAD: SERVICE}[kind]
    assert ATTRIBUTE_KEYS[PRESET_KIND_OF[kind]] <= set(attributes_of(kind, sample))


@pytest.mark.parametrize("kind", list(Kind))
def test_dirty_or_missing_data_gives_none_not_an_exception(kind: Kind) -> None:
    junk = SimpleNamespace(id="x", cost="abc", status=None, users="nope", createdate="2024-13-45",
                           params=["not", "a", "mapping"], name=None, autoprolong="sometimes")
    for entity in (junk, None, object()):
        attrs = attributes_of(kind, entity)
        assert ATTRIBUTE_KEYS[PRESET_KIND_OF[kind]] <= set(attrs)
    attrs = attributes_of(kind, junk)
    assert attrs["id"] is None


def test_empty_snapshots() -> None:
    assert attributes_of(Kind.CONTACT, Client(id=1, name=""))["email"] == ""
    assert attributes_of(Kind.COMPANY, Payer(id=1, account_id=1, name="", profiletype=2))["inn"] == ""
    attrs = attributes_of(Kind.LEAD, Service(id=1, account_id=1, status=2, pricelist_id=1))
    assert attrs["opendate"] is None and attrs["cost"] == Decimal("0")


def test_presets_name_the_attributes(presets: Presets) -> None:
    named = presets.named("service", attributes_of(Kind.LEAD, SERVICE, ServiceEvent.OPEN))
    assert named["service.event"] == "open" and named["service.param.domain"] == "example.com"
    assert named["service.param.ip"] == ""          # a param the service does not have reads as empty
