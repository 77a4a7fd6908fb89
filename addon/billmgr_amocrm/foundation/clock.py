"""One clock: timezone-aware UTC everywhere inside the module.

MySQL ``DATETIME`` columns hold naive UTC; the store converts at its boundary with
:func:`to_db` and :func:`from_db`, so no naive datetime travels past it.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

UTC = timezone.utc


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_db(moment: datetime) -> datetime:
    """The naive UTC value a ``DATETIME`` column stores."""
    return as_utc(moment).replace(tzinfo=None)


def from_db(value: Optional[datetime]) -> Optional[datetime]:
    """A ``DATETIME`` column's naive UTC value as an aware datetime (None stays None)."""
    return None if value is None else value.replace(tzinfo=UTC)


def seconds_between(earlier: datetime, later: datetime) -> float:
    return (as_utc(later) - as_utc(earlier)).total_seconds()


def local_day(moment: datetime) -> date:
    """The host's calendar day at ``moment`` (the panel shows the host's local dates)."""
    return as_utc(moment).astimezone().date()
