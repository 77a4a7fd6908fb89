"""BILLmanager snapshots -> the flat attribute dictionary conditions and fields read.

``attributes_of`` is total: whatever the snapshot holds (missing users, a cost that
is not a number, a date that is a string), it returns every key of the kind with a
value or None and never raises. Dirty data makes a condition false or a field
empty; it must never stop a sync.

Keys are the *paths* a preset value names (``presets.default`` maps
``service.param.domain`` to the path ``param.domain``).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, FrozenSet, Mapping, Optional

from ..domain import Kind, ServiceEvent

# The preset "kind" words and the entity each one describes.
PRESET_KIND_OF: Dict[Kind, str] = {Kind.CONTACT: "client", Kind.COMPANY: "payer", Kind.LEAD: "service"}
KIND_OF_PRESET: Dict[str, Kind] = {v: k for k, v in PRESET_KIND_OF.items()}

PARAM_PREFIX = "param."

ATTRIBUTE_KEYS: Dict[str, FrozenSet[str]] = {
    "client": frozenset({
        "id", "name", "realname", "login", "email", "phone", "country", "project", "project_id",
        "registration_date", "users_count",
    }),
    "payer": frozenset({
        "id", "account_id", "name", "type", "person", "inn", "kpp", "ogrn", "address_legal",
        "address_postal", "email", "phone", "country", "country_legal", "country_physical",
    }),
    "service": frozenset({
        "id", "account_id", "name", "event", "type", "type_name", "pricelist", "pricelist_id", "status",
        "cost", "currency", "period", "createdate", "opendate", "expiredate", "autoprolong",
        "processingmodule", "suspend_kind",
    }),
}


def is_known_path(preset_kind: str, path: str) -> bool:
    """A path ``attributes_of`` can fill: a fixed key, or ``param.<intname>`` for services."""
    if preset_kind == "service" and path.startswith(PARAM_PREFIX) and len(path) > len(PARAM_PREFIX):
        return True
    return path in ATTRIBUTE_KEYS.get(preset_kind, frozenset())


def attributes_of(kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> Dict[str, Any]:
    """The named attributes of a Client (contact), Payer (company) or Service (lead)."""
    if kind is Kind.CONTACT:
        return _client(entity)
    if kind is Kind.COMPANY:
        return _payer(entity)
    return _service(entity, event)


# --------------------------------------------------------------------------- helpers
def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _decimal(value: Any) -> Optional[Decimal]:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _date(value: Any) -> Optional[date]:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def _get(entity: Any, name: str) -> Any:
    try:
        return getattr(entity, name, None)
    except Exception:  # noqa: BLE001 - a broken property must not break the sync
        return None


def _client(client: Any) -> Dict[str, Any]:
    try:
        main = client.main_user
    except Exception:  # noqa: BLE001 - users of the wrong shape: treat as no user
        main = None
    users = _get(client, "users")
    return {
        "id": _int(_get(client, "id")),
        "name": _text(_get(client, "name")),
        "realname": _text(_get(main, "realname")),
        "login": _text(_get(main, "login")),
        "email": _text(_get(main, "email")),
        "phone": _text(_get(main, "phone")),
        "country": _text(_get(client, "country")),
        "project": _text(_get(client, "project_name")),
        "project_id": _int(_get(client, "project_id")),
        "registration_date": _date(_get(client, "registration_date")),
        "users_count": len(users) if isinstance(users, (tuple, list)) else 0,
    }


def _payer(payer: Any) -> Dict[str, Any]:
    attrs: Dict[str, Any] = {
        name: _text(_get(payer, name))
        for name in ("name", "person", "inn", "kpp", "ogrn", "address_legal", "address_postal",
                     "email", "phone", "country", "country_legal", "country_physical")
    }
    attrs["id"] = _int(_get(payer, "id"))
    attrs["account_id"] = _int(_get(payer, "account_id"))
    attrs["type"] = _int(_get(payer, "profiletype"))
    return attrs


def _service(service: Any, event: Optional[ServiceEvent]) -> Dict[str, Any]:
    autoprolong = _int(_get(service, "autoprolong"))
    attrs: Dict[str, Any] = {
        "id": _int(_get(service, "id")),
        "account_id": _int(_get(service, "account_id")),
        "name": _text(_get(service, "name")),
        "event": event.value if isinstance(event, ServiceEvent) else None,
        "type": _text(_get(service, "itemtype_intname")),
        "type_name": _text(_get(service, "itemtype_name")),
        "pricelist": _text(_get(service, "pricelist_name")),
        "pricelist_id": _int(_get(service, "pricelist_id")),
        "status": _int(_get(service, "status")),
        "cost": _decimal(_get(service, "cost")),
        "currency": _text(_get(service, "currency_iso")).upper(),
        "period": _int(_get(service, "period")),
        "createdate": _date(_get(service, "createdate")),
        "opendate": _date(_get(service, "opendate")),
        "expiredate": _date(_get(service, "expiredate")),
        "autoprolong": None if autoprolong is None else autoprolong > 0,
        "processingmodule": _int(_get(service, "processingmodule")),
        # abuse / employee / nonpayment for a suspended service whose reason is known, else None
        "suspend_kind": _text(_get(service, "suspend_kind")) or None,
    }
    params = _get(service, "params")
    if isinstance(params, Mapping):
        for key, value in params.items():
            if isinstance(key, str) and key:
                attrs[PARAM_PREFIX + key] = _text(value)
    return attrs


def attribute(attrs: Mapping[str, Any], path: str) -> Any:
    """An attribute by path; an itemparam the service does not have reads as empty."""
    if path in attrs:
        return attrs[path]
    return "" if path.startswith(PARAM_PREFIX) else None
