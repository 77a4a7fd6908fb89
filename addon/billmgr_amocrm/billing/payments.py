"""Payments and expiring services, read from BILLmanager's tables (issue 17: notes and tasks).

What is assumed about ``payment`` (the client as ``payment.account``, ``createdate`` and
``paydate``) and about the payment-to-service tie (``payment2item``) is in ``unverified.py``.
The tie table is looked for at run time: without it a payment is noted on the client's
contact alone, never guessed onto leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

from ..unverified import PAYMENT_ITEM_TABLE, PAYMENT_STATUS_STATE
from .values import as_datetime, as_int, as_opt_decimal, id_pages, text

if TYPE_CHECKING:
    from .reader import BillingDb

PAYMENTS = (
    "SELECT p.id, p.account, p.number, p.paymethodamount, cur.iso, pm.name, p.status, p.createdate, "
    "p.paydate FROM payment p LEFT JOIN currency cur ON cur.id = p.currency "
    "LEFT JOIN paymethod pm ON pm.id = p.paymethod WHERE p.id IN ({})"
)
PAYMENT_ITEMS = "SELECT payment, item FROM payment2item WHERE payment IN ({}) ORDER BY payment, item"
TABLE_EXISTS = ("SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = %s")
MAX_PAYMENT_ID = "SELECT COALESCE(MAX(id), 0) FROM payment"
# Payments after the set-up floor created since a date, in keyset pages (the reconciler's scan).
RECENT_PAYMENTS = "SELECT id FROM payment WHERE id > %s AND createdate >= %s ORDER BY id LIMIT %s"
# Services that expire in a window and are not deleted (renewal tasks), in keyset pages.
EXPIRING_ITEMS = ("SELECT id FROM item WHERE id > %s AND expiredate >= %s AND expiredate <= %s "
                  "AND status <> %s ORDER BY id LIMIT %s")


@dataclass(frozen=True)
class Payment:
    id: int
    account_id: int
    number: str
    amount: Optional[Decimal]
    currency_iso: str
    method: str
    status: int
    createdate: Optional[datetime]
    paydate: Optional[datetime]
    items: tuple[int, ...] = ()

    @property
    def state(self) -> Optional[str]:
        """paid | refunded | fraud | canceled, or None for a status that makes no note."""
        return PAYMENT_STATUS_STATE.get(self.status)


def payments(billing: BillingDb, ids: Sequence[int]) -> dict[int, Payment]:
    """Payments by id with the services they paid for; missing ids are absent."""
    found: dict[int, Payment] = {}
    for row in billing._rows_in(PAYMENTS, ids):
        found[int(row[0])] = Payment(
            id=int(row[0]), account_id=as_int(row[1]), number=text(row[2]), amount=as_opt_decimal(row[3]),
            currency_iso=text(row[4]), method=text(row[5]), status=as_int(row[6]),
            createdate=as_datetime(row[7]), paydate=as_datetime(row[8]))
    if found and has_payment_items(billing):
        items: dict[int, list[int]] = {}
        for payment_id, item in billing._rows_in(PAYMENT_ITEMS, sorted(found)):
            items.setdefault(int(payment_id), []).append(int(item))
        for payment_id, tied in items.items():
            old = found[payment_id]
            found[payment_id] = Payment(**{**old.__dict__, "items": tuple(tied)})
    return found


def has_payment_items(billing: BillingDb) -> bool:
    return bool(billing._rows(TABLE_EXISTS, (PAYMENT_ITEM_TABLE,))[0][0])


def max_payment_id(billing: BillingDb) -> int:
    return as_int(billing._rows(MAX_PAYMENT_ID, ())[0][0])


def recent_payment_ids(billing: BillingDb, after_id: int, since: datetime,
                       batch: int = 1000) -> Iterator[list[int]]:
    """Ids of payments above ``after_id`` created on or after ``since``, ascending pages."""
    yield from id_pages(lambda last: billing._rows(RECENT_PAYMENTS, (last, since, batch)), after_id, batch)


def expiring_service_ids(billing: BillingDb, first: date, last: date, deleted_status: int,
                         batch: int = 1000) -> Iterator[list[int]]:
    """Ids of services not deleted whose expiredate falls in [first, last], ascending pages."""
    def page(after: int) -> list:
        return billing._rows(EXPIRING_ITEMS, (after, first, last, deleted_status, batch))

    yield from id_pages(page, 0, batch)
