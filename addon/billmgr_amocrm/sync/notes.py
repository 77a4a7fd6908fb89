"""Payment notes (issue 17.2): a paid, cancelled, refunded or fraud-flagged payment becomes a
note on the client's contact and on the leads of the services BILLmanager ties it to.

Exactly once, as the creates are (``sync/creates.py``, ``sync/settle.py``):

* one row per (payment, state, target) in ``amocrm_payment2note`` (its unique key): an event
  and the reconciler finding the same payment make one row;
* the row's intent (a fresh token and the amoCRM entity) is committed before the POST, and
  the note's last line carries ``bmsync-<token>``;
* a row whose intent is open (a lost answer, a worker killed mid-request) is settled after
  ``settle_after`` by reading the entity's notes changed since the intent: the note found is
  adopted; none found means the POST never took, and it is sent again with a new token;
* the job runs only under the engine lease (``worker.sync_once``), so two engines never
  send the same row at once; and an intent is taken only by the process that changes the
  row from "no intent" (compare and set), so even two senders would not both POST it.

Where payments come from: the hooked events ``payment.setpaid`` / ``setcanceled`` /
``setfraud`` (``store/resolve.py``), and the reconciler (:func:`reconcile_payments`), which
reads the payments created in the last ``LOOKBACK`` above a floor: the highest payment id
when the module first ran the scan (kept in ``amocrm_cursor``). Older history is never
noted by the scan, so an install does not flood amoCRM with years of payments; a refund of
an old payment still comes through its event. The worker reads the payment's status, never
trusts an event's name: events may come late and out of order.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Optional, Sequence

from ..billing.payments import Payment, max_payment_id, payments, recent_payment_ids
from ..errors import AmbiguousWriteError, FixData, RetryLater
from ..foundation.clock import as_utc
from ..markers import SYNC_TAG_PREFIX
from ..ports.activities import ActivityApi, NoteStore, PendingNote
from ..rules.config import NotesConfig

if TYPE_CHECKING:
    from ..billing import BillingDb

log = logging.getLogger(__name__)

FLOOR_CURSOR = "notes:payment_floor"
LOOKBACK = timedelta(days=30)
PASS_LIMIT = 200
# the settle reads notes changed since a little before the intent (clocks differ by seconds)
CLOCK_SLACK = 300
ENTITY = {"contact": "contacts", "lead": "leads"}
STATE_WORDS = {
    "ru": {"paid": "оплачен", "canceled": "отменён", "refunded": "возвращён",
           "fraud": "помечен как мошеннический"},
    "en": {"paid": "paid", "canceled": "cancelled", "refunded": "refunded", "fraud": "flagged as fraud"},
}
TEMPLATE = {
    "ru": "Платёж № {number} {state}: {amount} {currency}, способ оплаты: {method}, дата: {date}",
    "en": "Payment No. {number} {state}: {amount} {currency}, method: {method}, date: {date}",
}


@dataclass
class NoteReport:
    done: int = 0
    waiting: int = 0          # the target is not linked yet, or an intent waits for settle_after
    failed: int = 0
    retried: int = 0


def note_rows(found: Sequence[Payment], config: NotesConfig) -> list[tuple[int, str, str, int]]:
    """(payment, state, target kind, target id) for the payments' current states that make notes."""
    rows: list[tuple[int, str, str, int]] = []
    for payment in found:
        state = payment.state
        if state is None or state not in config.payment_states or payment.account_id <= 0:
            continue
        rows.append((payment.id, state, "contact", payment.account_id))
        if config.on_leads:
            rows.extend((payment.id, state, "lead", item) for item in payment.items)
    return rows


def queue_payments(store: NoteStore, billing: BillingDb, config: NotesConfig, ids: Sequence[int]) -> int:
    """Note rows for these payments as they are now; how many were new (the others exist)."""
    if not ids or not config.payment_states:
        return 0
    # one unit of work: its BEGIN also starts a fresh snapshot for the read when the billing
    # reader shares the store's connection (the worker's), so a payment just paid is seen
    with store.transaction():
        found = payments(billing, ids)
        missing = sorted(set(ids) - set(found))
        if missing:
            log.warning("payment notes: payments %s not found in BILLmanager; nothing to note",
                        ", ".join(map(str, missing)))
        return store.add_payment_notes(note_rows(list(found.values()), config))


def reconcile_payments(store: NoteStore, billing: BillingDb, config: NotesConfig, now: datetime) -> int:
    """Note rows for recent payments no event brought (bounded by the floor and ``LOOKBACK``)."""
    if not config.payment_states:
        return 0
    floor = store.get_cursor(FLOOR_CURSOR)
    if floor is None:
        # the first scan: everything up to here is history, never noted by the reconciler
        store.set_cursor(FLOOR_CURSOR, str(max_payment_id(billing)))
        log.info("payment notes: payments from now on are noted (older ones are history)")
        return 0
    since = (as_utc(now) - LOOKBACK).replace(tzinfo=None)
    added = 0
    for ids in recent_payment_ids(billing, int(floor), since):
        added += queue_payments(store, billing, config, ids)
    if added:
        log.info("reconcile: %d payment notes to make", added)
    return added


def note_payments(store: NoteStore, api: ActivityApi, billing: BillingDb, *, now: datetime,
                  settle_after: float, lang: str = "ru", made_since: Optional[int] = None) -> NoteReport:
    """Make the pending notes (the engine lease held): settle open intents, send the rest.

    ``made_since`` (unix time; after the database went back, ``sync/timeline.py``): a note is
    first looked for on its entity by its key, made since then, and adopted if found."""
    report = NoteReport()
    rows = store.pending_payment_notes(PASS_LIMIT)
    if not rows:
        return report
    with store.transaction():           # its BEGIN: a fresh snapshot of the payments too
        found = payments(billing, sorted({r.payment_id for r in rows}))
    for row in rows:
        if row.token is not None:
            settled = _settle(store, api, row, now, settle_after)
            if settled is None:
                report.waiting += 1
                continue
            if settled:
                report.done += 1
                continue
            row = replace(row, token=None)
        if row.linked_id is None:
            report.waiting += 1        # its contact or lead is made first; the note waits
            continue
        payment = found.get(row.payment_id)
        if payment is None:
            store.payment_note_failed(row.id, f"payment {row.payment_id} no longer exists in BILLmanager")
            report.failed += 1
            continue
        try:
            made = made_since is not None and _found(store, api, row, row.linked_id, made_since)
            if made or _send(store, api, row, row.linked_id, payment, lang):
                report.done += 1
            else:
                report.waiting += 1     # another process took it first: it sends, or its intent settles
        except AmbiguousWriteError as exc:
            log.warning("payment %d note on %s %d: answer lost (%s); settled after %.0f s",
                        row.payment_id, row.target_kind, row.target_id, exc, settle_after)
            report.waiting += 1
        except FixData as exc:
            store.payment_note_failed(row.id, str(exc))
            log.warning("payment %d note on %s %d refused: %s", row.payment_id, row.target_kind,
                        row.target_id, exc)
            report.failed += 1
        except RetryLater as exc:
            store.payment_note_retry(row.id, str(exc))
            report.retried += 1
            break              # amoCRM is not answering now: the rest waits for the next pass
    store.count_daily({"note": report.done, "failed": report.failed}, now)
    return report


def _send(store: NoteStore, api: ActivityApi, row: PendingNote, entity_id: int, payment: Payment,
          lang: str) -> bool:
    token = secrets.token_hex(6)
    if not store.payment_note_intent(row.id, entity_id, token):    # committed before the POST
        return False
    note_id = api.add_note(ENTITY[row.target_kind], entity_id, note_text(payment, row.state, token, lang))
    store.payment_note_done(row.id, note_id, entity_id)
    return True


def _found(store: NoteStore, api: ActivityApi, row: PendingNote, entity_id: int, since: int) -> bool:
    """The note made before the database went back (its row went back with it), adopted."""
    note_id = api.find_note(ENTITY[row.target_kind], entity_id, note_key(row.payment_id, row.state), since)
    if note_id is None:
        return False
    log.info("payment %d note on %s %d: made before the database went back, adopted (%d)", row.payment_id,
             row.target_kind, row.target_id, note_id)
    store.payment_note_done(row.id, note_id, entity_id)
    return True


def _settle(store: NoteStore, api: ActivityApi, row: PendingNote, now: datetime,
            settle_after: float) -> Optional[bool]:
    """An open intent: True (the note exists, adopted), False (it does not: send again), None (wait)."""
    assert row.token is not None and row.entity_id is not None
    started = as_utc(row.intent_at or now)
    if (as_utc(now) - started).total_seconds() < settle_after:
        return None
    since = int(started.timestamp()) - CLOCK_SLACK
    note_id = api.find_note(ENTITY[row.target_kind], row.entity_id, SYNC_TAG_PREFIX + row.token, since)
    if note_id is not None:
        log.info("payment %d note on %s %d: the lost answer's note %d adopted", row.payment_id,
                 row.target_kind, row.target_id, note_id)
        store.payment_note_done(row.id, note_id, row.entity_id)
        return True
    store.payment_note_retry(row.id, "the note of a lost answer was not made; sending it again")
    return False


def note_text(payment: Payment, state: str, token: str, lang: str = "ru") -> str:
    """What the manager reads, and the row's key with the token on the last line (the settle and
    the audit look for them; amoCRM's notes have no field the module could hide them in)."""
    words = STATE_WORDS.get(lang, STATE_WORDS["ru"])
    when = payment.paydate if state == "paid" and payment.paydate else payment.createdate
    amount = "—" if payment.amount is None else f"{payment.amount:.2f}"
    head = TEMPLATE.get(lang, TEMPLATE["ru"]).format(
        number=payment.number or payment.id, state=words.get(state, state), amount=amount,
        currency=payment.currency_iso, method=payment.method or "—",
        date=f"{when:%Y-%m-%d %H:%M}" if when else "—")
    return f"{head}\n{note_key(payment.id, state)}{SYNC_TAG_PREFIX}{token}]"


def note_key(payment_id: int, state: str) -> str:
    """The part of a note's last line that names its row (payment and state), whatever its token."""
    return f"[billmgr:payment:{int(payment_id)}:{state} "
