"""Payments in the sandbox, as BILLmanager's payment functions leave them (issue 17.2 tests)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional, Sequence

PAID, REFUNDED, FRAUD, CANCELED = 4, 6, 7, 9


def _paymethod(conn: Any, name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM paymethod WHERE name = %s", (name,))
        row = cur.fetchone()
        if row:
            return int(row[0])
        cur.execute("INSERT INTO paymethod (name) VALUES (%s)", (name,))
        method = int(cur.lastrowid)
    conn.commit()
    return method


def add_payment(conn: Any, account_id: int, amount: Decimal, *, status: int = PAID, currency: int = 126,
                method: str = "Банковская карта", number: Optional[str] = None,
                items: Sequence[int] = (), when: Optional[datetime] = None) -> int:
    """A payment of the client (paid by default), tied to ``items`` when it paid for them."""
    method_id = _paymethod(conn, method)
    when = when or datetime.utcnow().replace(microsecond=0)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO payment (account, number, paymethodamount, currency, paymethod, status, "
                    "createdate, paydate) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (account_id, number, amount, currency, method_id, status, when,
                     when if status == PAID else None))
        payment_id = int(cur.lastrowid)
        if number is None:
            cur.execute("UPDATE payment SET number = %s WHERE id = %s", (f"PAY-{payment_id}", payment_id))
        for item in items:
            cur.execute("INSERT INTO payment2item (payment, item) VALUES (%s, %s)", (payment_id, item))
    conn.commit()
    return payment_id


def set_payment_status(conn: Any, payment_id: int, status: int) -> int:
    with conn.cursor() as cur:
        cur.execute("UPDATE payment SET status = %s WHERE id = %s", (status, payment_id))
    conn.commit()
    return payment_id
