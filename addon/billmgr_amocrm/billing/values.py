"""BILLmanager column values -> clean Python values; id lists -> chunks and placeholders.

Dirty data never raises: NULLs become "" / None / 0, bytes are decoded as UTF-8 with
replacement characters, zero or invalid dates become None, text is stripped.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator, Optional, Sequence

from ..domain import SuspendKind
from ..unverified import ITEM_STATUS_SUSPENDED, SUSPEND_FLAG_OFF, SUSPEND_KIND_COLUMNS

# IN (...) lists never grow past this many bound parameters.
IN_CHUNK = 500


def text(value: Any) -> str:
    """Any column value as clean text: NULL -> "", bytes decoded leniently, stripped."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    return str(value).strip()


def as_date(value: Any) -> Optional[date]:
    """A DATE/DATETIME column as a date; zero dates ('0000-00-00' arrives as a str) -> None."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None


def as_datetime(value: Any) -> Optional[datetime]:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())  # BILLmanager stores naive local times
    return None


def as_int(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_opt_int(value: Any) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_opt_decimal(value: Any) -> Optional[Decimal]:
    """A DECIMAL column that may be NULL: None when there is no number (never a made-up 0)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(text(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def join_address(*parts: Any) -> str:
    """Postcode, city and street into one line, skipping blanks."""
    return ", ".join(p for p in (text(x) for x in parts) if p)


def unique_ids(ids: Sequence[int]) -> list[int]:
    """Distinct positive integer ids in first-seen order (junk is dropped, not queried)."""
    seen: dict[int, None] = {}
    for raw in ids:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            continue
        if value > 0:
            seen.setdefault(value, None)
    return list(seen)


def chunks(ids: Sequence[int], size: int = IN_CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start:start + size])


def placeholders(count: int) -> str:
    """``%s, %s, ...``: built from the COUNT of values only, never from the values."""
    return ", ".join(["%s"] * count)




def suspend_kind(status: int, flags: Sequence[Any]) -> Optional[SuspendKind]:
    """Why a suspended item is suspended: the first of ``unverified.SUSPEND_KIND_COLUMNS``
    (abuse, employee, non-payment) whose column is set; None when the item is not suspended
    or no column says (a value's meaning is unverified: NULL, '', 'off' and 0 read as unset)."""
    if status != ITEM_STATUS_SUSPENDED:
        return None
    for (_, kind), flag in zip(SUSPEND_KIND_COLUMNS, flags):
        if flag is None or text(flag).lower() in SUSPEND_FLAG_OFF:
            continue
        return SuspendKind(kind)
    return None


def id_pages(fetch: Callable[[int], Sequence[Any]], after_id: int, batch: int) -> Iterator[list[int]]:
    """Keyset pagination over ids: ``fetch(last)`` returns up to ``batch`` rows whose first column
    is an id above ``last``, ascending. Each page is its own short query, so nothing stays open
    between pages and rows added meanwhile with higher ids are still seen."""
    last = after_id
    while True:
        page = [int(r[0]) for r in fetch(last)]
        if not page:
            return
        yield page
        if len(page) < batch:
            return
        last = page[-1]
