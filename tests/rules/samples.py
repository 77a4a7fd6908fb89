"""Shared data for the rules tests: the shipped presets and a few snapshots."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict

from billmgr_amocrm.domain import Client, ClientUser, Payer, Service
from billmgr_amocrm.rules.config import ModuleConfig
from billmgr_amocrm.rules.config_check import config_from_data
from billmgr_amocrm.rules.presets import Presets, merge_presets, parse_presets

REPO = Path(__file__).resolve().parents[2]
PRESETS_DEFAULT = REPO / "etc" / "amocrm" / "presets.default"


def shipped_presets() -> Presets:
    source = str(PRESETS_DEFAULT)
    return merge_presets(parse_presets(json.loads(PRESETS_DEFAULT.read_text("utf-8")), source))


def make_config(presets: Presets, **sections: Any) -> ModuleConfig:
    data: Dict[str, Any] = {"version": 1}
    data.update(sections)
    return config_from_data(data, presets)


CLIENT = Client(
    id=42, name="ООО Ромашка (аккаунт)", registration_date=datetime(2024, 3, 1, 12, 0),
    project_id=1, project_name="Hoster", country="RU",
    users=(
        ClientUser(id=7, login="ivan", realname="Петров Иван Иванович", email=" Ivan@Example.COM ",
                   phone="8 (900) 123-45-67", enabled=True),
        ClientUser(id=8, login="buh", realname="Бухгалтер", email="buh@example.com, not-an-email",
                   phone="+7 900 123 45 67; 12-34", enabled=True),
        ClientUser(id=9, login="old", realname="Old", email="old@example.com", phone="", enabled=False),
    ),
)

PAYER = Payer(id=5, account_id=42, name="ООО «Ромашка»", profiletype=2, person="Иванов И. И.",
              inn="7701234567", kpp="770101001", address_legal="Москва, ул. Ленина, 1",
              email="INFO@romashka.ru", phone="+7 (495) 111-22-33 доб. 15", country_legal="RU")

SERVICE = Service(id=1234, account_id=42, status=2, pricelist_id=10, pricelist_name="VDS-2",
                  itemtype_intname="vds", itemtype_name="Виртуальный сервер", cost=Decimal("1499.50"),
                  currency_iso="rub", period=1, createdate=date(2024, 5, 1), opendate=date(2024, 5, 2),
                  expiredate=date(2024, 6, 2), autoprolong=1, processingmodule=3,
                  params={"domain": "example.com", "ostempl": "debian"})
