"""Properties over arbitrary snapshots: payloads are always clean and within amoCRM's limits."""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from typing import Any, Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billmgr_amocrm.domain import Client, ClientUser, Kind, Payer, Service, ServiceEvent
from billmgr_amocrm.ports import MappingContext
from billmgr_amocrm.rules.contacts import normalize_emails, normalize_phones
from billmgr_amocrm.rules.mapping import RuleSet

from .samples import make_config, shipped_presets

PRESETS = shipped_presets()
RULES = RuleSet(make_config(
    PRESETS,
    tags=[{"id": "t1", "entity": "lead", "tag": "tag\x01 one",
           "conditions": [{"value": "service.param.domain", "validator": "regex", "argument": "a"}]}],
    fields=[{"id": "f1", "entity": "lead", "field_id": 1, "field_type": "text", "value": "service.pricelist"},
            {"id": "f2", "entity": "company", "field_id": 2, "field_type": "textarea",
             "value": "payer.address_legal"},
            {"id": "f3", "entity": "contact", "field_id": 3, "field_type": "date",
             "value": "client.registration_date"}]), PRESETS)
CTX = MappingContext(marker_field_ids={Kind.CONTACT: 9, Kind.COMPANY: 9, Kind.LEAD: 9},
                     event=ServiceEvent.OPEN)

text = st.text(max_size=400)
users = st.builds(ClientUser, id=st.integers(1, 10**6), login=text, realname=text, email=text, phone=text,
                  enabled=st.booleans())
clients = st.builds(Client, id=st.integers(1, 10**9), name=text, country=text,
                    users=st.lists(users, max_size=4).map(tuple))
payers = st.builds(Payer, id=st.integers(1, 10**9), account_id=st.integers(1, 10**9), name=text,
                   profiletype=st.just(2), person=text, address_legal=text, email=text, phone=text)
services = st.builds(Service, id=st.integers(1, 10**9), account_id=st.integers(1, 10**9),
                     status=st.integers(0, 9), pricelist_id=st.integers(1, 10**6), pricelist_name=text,
                     itemtype_intname=text, itemtype_name=text, cost=st.decimals(allow_nan=True),
                     params=st.dictionaries(st.sampled_from(["domain", "ip", "x"]), text, max_size=3))


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(clients.map(lambda e: (Kind.CONTACT, e)), payers.map(lambda e: (Kind.COMPANY, e)),
                 services.map(lambda e: (Kind.LEAD, e))))
def test_payloads_are_clean_json_with_names_within_limits(pair: Any) -> None:
    kind, entity = pair
    payload = RULES.payload(kind, entity, CTX)
    body = payload.body
    assert 0 < len(body["name"]) <= 255
    for value in strings([body, payload.tags, payload.managed_tags]):
        assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value), value
    json.dumps(body, ensure_ascii=False).encode("utf-8")   # always serialisable
    if kind is Kind.LEAD:   # a price amoCRM stores, or None where the cost is not a number
        finite = isinstance(entity.cost, Decimal) and entity.cost.is_finite()
        assert (0 <= body["price"] <= 2_147_483_647) if finite else body["price"] is None


@given(st.text(max_size=80), st.sampled_from(["RU", "", "US"]))
def test_normalised_phones_are_plus_and_digits(raw: str, country: str) -> None:
    for phone in normalize_phones(raw, country):
        assert phone[0] == "+" and phone[1:].isdigit() and phone[1:].isascii() and 8 <= len(phone) - 1 <= 15


@given(st.text(max_size=80))
def test_normalised_emails_are_lowercase_single_at(raw: str) -> None:
    for email in normalize_emails(raw):
        assert email == email.lower() and email.count("@") == 1 and " " not in email
