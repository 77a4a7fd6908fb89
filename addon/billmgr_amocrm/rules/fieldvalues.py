"""A BILLmanager value -> the ``values`` list of one amoCRM custom field, per field type.

Returns None when there is nothing sensible to send (empty value, not a number
for a numeric field, a select value the rule does not map): the mapping then clears
the field (``"values": None``) rather than send it wrong, which amoCRM would answer
with a 400 that refuses the whole entity, or leave an old value that is no longer true.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Union

from .conditions import as_bool, as_date, as_decimal, is_empty
from .presets import ValueDef
from .text import NAME_LIMIT, clean_text

LONG_TEXT_LIMIT = 10000
ValueItem = Dict[str, Any]


def display_text(raw: Any, value: Optional[ValueDef], lang: str) -> str:
    """How a value reads in a text field: enum labels, localised yes/no and dates."""
    if value is not None and value.type == "enum":
        label = value.option_label(raw, lang)
        if label:
            return label
    if isinstance(raw, bool):
        return ("да" if raw else "нет") if lang == "ru" else ("yes" if raw else "no")
    if isinstance(raw, (date, datetime)):
        day = raw.date() if isinstance(raw, datetime) else raw
        return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()
    if isinstance(raw, Decimal):
        return format(raw, "f")
    return "" if raw is None else str(raw)


def unix_date(day: date) -> int:
    """Midnight UTC of a calendar date: the same date in every zone from UTC to UTC+14 (RU included)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _select_item(key: str, label: str, enum_map: Mapping[str, Union[int, str]]) -> Optional[ValueItem]:
    if not enum_map:
        return {"value": clean_text(label)} if clean_text(label) else None
    target = enum_map.get(key)
    if target is None:
        folded = {k.strip().casefold(): v for k, v in enum_map.items()}
        target = folded.get(key.strip().casefold())
    if target is None:
        return None
    return {"enum_id": target} if isinstance(target, int) else {"value": clean_text(target)}


def _keys(raw: Any) -> List[Any]:
    if isinstance(raw, (list, tuple, set, frozenset)):
        return list(raw)
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return [raw]


def field_values(field_type: str, raw: Any, value: Optional[ValueDef],
                 enum_map: Mapping[str, Union[int, str]], lang: str = "ru") -> Optional[List[ValueItem]]:
    """The ``values`` for a ``custom_fields_values`` item, or None: nothing to show (clear it)."""
    if is_empty(raw):
        return None
    if field_type in ("numeric", "monetary"):
        number = as_decimal(raw)
        return None if number is None else [{"value": format(number, "f")}]
    if field_type == "checkbox":
        flag = as_bool(raw)
        return None if flag is None else [{"value": flag}]
    if field_type in ("date", "date_time", "birthday"):
        day = as_date(raw)
        return None if day is None else [{"value": unix_date(day)}]
    if field_type in ("select", "radiobutton", "multiselect"):
        keys = _keys(raw) if field_type == "multiselect" else [raw]
        items = [_select_item(display_text(k, None, lang), display_text(k, value, lang), enum_map)
                 for k in keys]
        kept = [i for i in items if i]
        if field_type != "multiselect":
            return kept[:1] or None
        unique = [dict(t) for t in dict.fromkeys(tuple(sorted(i.items())) for i in kept)]
        return unique or None
    limit = LONG_TEXT_LIMIT if field_type == "textarea" else NAME_LIMIT
    text = clean_text(display_text(raw, value, lang), limit)
    if field_type == "url" and text:
        if " " in text:
            return None
        if "://" not in text:
            text = "https://" + text
    return [{"value": text}] if text else None
