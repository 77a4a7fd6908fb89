"""Which queue rows a recorded panel event means.

The hook records the request as it came (func, elid, plid, su, email, ...). Here,
in the worker, it becomes ``(Kind, billmgr_id, reason)`` rows:

    register, account.edit   -> contact: elid, else the id in the result doc, else by email/login
    user.edit                -> the user's account -> contact (plid is the account on a create)
    profile.edit             -> the payer -> company (the worker re-checks profiletype 2);
                                on a create: the newest payer of the client (plid / su / the
                                acting client). The client's contact is not re-queued: a payer
                                edit changes nothing on the contact, and the worker makes sure the
                                contact exists before it links a company to it.
    profile.delete           -> the payers named (elid) -> company: the worker finds them gone
                                and takes their companies off the client (sync/unlinks.py)
    service.postopen         -> lead, reason open
    service.postprolong      -> lead, reason prolong
    service.postsuspend      -> lead, reason suspend
    service.postresume       -> lead, reason resume
    service.postclose        -> lead, reason close
    service.postreopen       -> lead, reason resume (a closed service running again: what the
                                reconciler would queue for status 4 -> 2, without the wait)
    service.postsetparam     -> lead, reason edit (its parameters, the domain among them, changed;
                                not an event the rules place a lead on)
    payment.setpaid, payment.setcanceled, payment.setfraud
                             -> no queue row: note rows of the payment's current state
                                (sync/notes.py), in the same transaction as the drain's

``elid`` may be a list (``"1, 2, 3"`` on group operations). An event nothing can be
resolved from is logged and dropped: the reconciler finds what it missed.

The acting user (the hook keeps ``AUTH_USER`` as ``user`` and ``AUTH_LEVEL`` as ``level``)
names the client only when a client made the change (level below an administrator's).
BILLmanager sends the user's numeric id (``user.id``) or ``root``; a login, as older
panels sent, is accepted only when exactly one client has a user with it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..domain import Kind
from ..ports import BillingReader, Store
from ..unverified import ADMIN_MIN_LEVEL, AUTH_USER_ROOT

if TYPE_CHECKING:
    from ..rules.config import NotesConfig

log = logging.getLogger(__name__)

PAYMENT_EVENTS = ("payment.setpaid", "payment.setcanceled", "payment.setfraud")

Target = tuple[Kind, int, str]

EDIT = "edit"
OPEN = "open"
PROLONG = "prolong"

# service.post<event> -> the queue row's reason (a ServiceEvent's value)
SERVICE_EVENTS = {
    "service.postopen": OPEN,
    "service.postprolong": PROLONG,
    "service.postsuspend": "suspend",
    "service.postresume": "resume",
    "service.postclose": "close",
    "service.postreopen": "resume",
    "service.postsetparam": EDIT,
}


def _ids(value: Any) -> list[int]:
    """Positive ids in an elid-like value: ``7``, ``"7"``, ``"7, 8"``; junk is ignored."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if value > 0 else []
    if not isinstance(value, str):
        return []
    found = []
    for part in value.split(","):
        part = part.strip()
        if part.isdigit() and int(part) > 0:
            found.append(int(part))
    return found


def _text(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    return value.strip() if isinstance(value, str) else ""


def _acting_client(event: dict[str, Any], billing: BillingReader) -> int | None:
    """The client whose user made the change, when a client (not an administrator) did."""
    level = event.get("level")
    try:
        is_client = level is not None and int(level) < ADMIN_MIN_LEVEL
    except (TypeError, ValueError):
        is_client = False
    user = _text(event, "user")
    if not is_client or not user or user == AUTH_USER_ROOT:
        return None
    if user.isdigit():   # the user's id; a number that is no user's id may still be an old login
        return billing.account_of_user(int(user)) or billing.account_by_login(user)
    return billing.account_by_login(user)


def _account_by_name(event: dict[str, Any], billing: BillingReader, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        if key == "user":
            account = _acting_client(event, billing)
        else:
            value = _text(event, key)
            account = billing.account_by_login_or_email(value) if value else None
        if account:
            return account
    return None


def _contacts(event: dict[str, Any], billing: BillingReader) -> list[int]:
    ids = _ids(event.get("elid")) or _ids(event.get("doc_id"))
    if ids:
        return ids
    account = _account_by_name(event, billing, ("email", "su", "user"))
    return [account] if account else []


def _contacts_of_users(event: dict[str, Any], billing: BillingReader) -> list[int]:
    users = _ids(event.get("elid")) or _ids(event.get("doc_id"))
    accounts = [a for a in (billing.account_of_user(u) for u in users) if a]
    if accounts:
        return sorted(set(accounts))
    plid = _ids(event.get("plid"))
    if plid:
        return plid
    account = _account_by_name(event, billing, ("su", "user"))
    return [account] if account else []


def _companies(event: dict[str, Any], billing: BillingReader) -> list[int]:
    ids = _ids(event.get("elid")) or _ids(event.get("doc_id"))
    if ids:
        return ids
    accounts = _ids(event.get("plid"))
    if not accounts:
        account = _account_by_name(event, billing, ("su", "user"))
        accounts = [account] if account else []
    return [p for p in (billing.newest_payer_of(a) for a in accounts) if p]


def resolve_event(event: dict[str, Any], billing: BillingReader) -> list[Target]:
    """The queue rows an event stands for; [] (and a log line) when it cannot be resolved.

    Errors reading BILLmanager propagate: the caller keeps the event and tries later.
    """
    func = _text(event, "func")
    targets: list[Target]
    if func in ("register", "account.edit"):
        targets = [(Kind.CONTACT, i, EDIT) for i in _contacts(event, billing)]
    elif func == "user.edit":
        targets = [(Kind.CONTACT, i, EDIT) for i in _contacts_of_users(event, billing)]
    elif func == "profile.edit":
        targets = [(Kind.COMPANY, i, EDIT) for i in _companies(event, billing)]
    elif func == "profile.delete":
        targets = [(Kind.COMPANY, i, EDIT) for i in _ids(event.get("elid"))]
    elif func in SERVICE_EVENTS:
        reason = SERVICE_EVENTS[func]
        targets = [(Kind.LEAD, i, reason) for i in _ids(event.get("elid")) or _ids(event.get("doc_id"))]
    elif func in PAYMENT_EVENTS:
        return []          # not a queue row: enqueue_event makes its note rows
    else:
        log.warning("spool: event %r is not one the module handles; ignored", func)
        return []
    if not targets:
        log.warning("spool: cannot tell which entity event %s (elid=%r plid=%r) is about; "
                    "the reconciler will pick it up", func, event.get("elid"), event.get("plid"))
    return targets


def enqueue_event(event: dict[str, Any], store: Store, billing: BillingReader,
                  notes: Optional[NotesConfig] = None) -> list[Target]:
    """Resolve an event and queue its rows in one transaction (the spool drain's ``handle``).

    A payment event (with ``notes``, the settings) records the payment's note rows instead."""
    if _text(event, "func") in PAYMENT_EVENTS:
        ids = _ids(event.get("elid"))
        if notes is not None and ids:
            from ..sync.notes import queue_payments

            queue_payments(store, billing, notes, ids)  # type: ignore[arg-type]
        elif not ids:
            log.warning("spool: event %s names no payment (elid=%r); the reconciler will pick it up",
                        _text(event, "func"), event.get("elid"))
        return []
    targets = resolve_event(event, billing)
    with store.transaction():
        for kind, billmgr_id, reason in targets:
            store.enqueue(kind, billmgr_id, reason)
    return targets


def spool_handler(store: Store, billing: BillingReader,
                  notes: Optional[NotesConfig] = None) -> Callable[[dict[str, Any]], None]:
    """``handle`` for ``spool.drain``: ``drain(dir, spool_handler(store, billing, notes))``."""
    def handle(event: dict[str, Any]) -> None:
        enqueue_event(event, store, billing, notes)
    return handle
