"""presets.default ships complete and valid."""

from __future__ import annotations

from billmgr_amocrm.domain import ServiceEvent, SuspendKind
from billmgr_amocrm.rules.conditions import OPERATORS
from billmgr_amocrm.rules.presets import Presets


def test_shipped_presets_offer_the_values_admins_need(presets: Presets) -> None:
    for name in ("service.event", "service.type", "service.pricelist", "service.status", "service.cost",
                 "service.currency", "service.period", "service.opendate", "service.expiredate",
                 "service.autoprolong", "service.param.domain", "client.name", "client.email",
                 "client.phone", "client.country", "client.project", "client.registration_date",
                 "payer.name", "payer.type", "payer.inn", "payer.kpp", "payer.address_legal"):
        value = presets.value(name)
        assert value.label.ru and value.label.en
    assert presets.value("service.param.domain").path == "param.domain"
    # every service event the module records (issue 17.1), so pipeline rules can react to each
    assert set(presets.value("service.event").options or {}) == {e.value for e in ServiceEvent}
    assert set(presets.value("service.suspend_kind").options or {}) == {k.value for k in SuspendKind}
    assert presets.value("service.suspend_kind").path == "suspend_kind"


def test_shipped_presets_define_all_nine_validators(presets: Presets) -> None:
    assert {v.operator for v in presets.validators.values()} == set(OPERATORS)
    assert not presets.validator("empty").takes_argument
    assert presets.validator("greater").applies_to() == ("int", "number", "date")
