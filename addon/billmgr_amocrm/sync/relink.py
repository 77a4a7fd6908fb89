"""What pointed at an entity that comes back in amoCRM: queued to point at the new one.

An entity deleted in amoCRM's UI is re-created (:mod:`.updates`) under a new id, but what
was linked to the old one still is:

    contact (a client)   <- the companies of the client's legal payers (company -> contact),
                            the leads of the client's services (lead -> main contact)
    company (a payer)    <- the leads of its client's services (lead -> company)

:meth:`Relinker.requeue` queues those that are linked ("relink"), in the transaction that
forgets the old link, so they are pushed and linked again after their parent exists again:
in the same pass (contacts, then companies, then leads), or the next one after a crash. A
child that failed (a link to the deleted entity refused) is revived by it too.

A lead or a company may hold several contacts, so relinking adds the new contact beside
the old one; :meth:`Relinker.unlink_old` removes the link to the deleted contact
(POST /{entity}/unlink). A lead's company and a contact's company are single: linking the
new one replaces the old. The unlink is housekeeping, not the record's data: amoCRM
refusing it (it may not know a deleted entity any more) is logged, never a failure.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData, RetryLater
from ..ports import AmoApi, BillingReader, Store

log = logging.getLogger(__name__)

RELINK_REASON = "relink"


def children_by_parent(billing: BillingReader, store: Store, kind: Kind,
                       billmgr_ids: Sequence[int]) -> dict[int, dict[Kind, list[int]]]:
    """Each of these entities -> the linked entities that point at it in amoCRM, per kind."""
    if kind is Kind.CONTACT:
        account_of = {int(i): int(i) for i in billmgr_ids}
        payers = billing.legal_payers_by_account(sorted(account_of))
        companies = store.links(Kind.COMPANY, [p for ps in payers.values() for p in ps])
    elif kind is Kind.COMPANY:
        account_of = {int(i): p.account_id for i, p in billing.payers(billmgr_ids).items()}
        payers, companies = {}, {}
    else:
        return {}
    services = billing.services_by_account(sorted(set(account_of.values())))
    leads = store.links(Kind.LEAD, [s for ss in services.values() for s in ss])
    found: dict[int, dict[Kind, list[int]]] = {}
    for parent, account in sorted(account_of.items()):
        mine = {Kind.COMPANY: sorted(p for p in payers.get(account, ()) if p in companies),
                Kind.LEAD: sorted(s for s in services.get(account, ()) if s in leads)}
        found[parent] = {k: ids for k, ids in mine.items() if ids}
    return found


def linked_children(billing: BillingReader, store: Store, kind: Kind,
                    billmgr_ids: Sequence[int]) -> dict[Kind, list[int]]:
    """The linked entities that point at these ones in amoCRM, per kind."""
    merged: dict[Kind, set[int]] = {}
    for children in children_by_parent(billing, store, kind, billmgr_ids).values():
        for child_kind, ids in children.items():
            merged.setdefault(child_kind, set()).update(ids)
    return {k: sorted(merged[k]) for k in (Kind.COMPANY, Kind.LEAD) if k in merged}


def requeue_children(billing: BillingReader, store: Store, kind: Kind, billmgr_ids: Sequence[int],
                     why: str) -> dict[Kind, list[int]]:
    """Queue what points at these entities to point at their new ones (inside the caller's
    transaction: re-created, or unlinked by an admin); returns it."""
    found = linked_children(billing, store, kind, billmgr_ids)
    for child_kind, ids in found.items():
        store.enqueue_many(child_kind, ids, RELINK_REASON)
        log.info("%s %s %s: %d %s queued to be linked to the new one", kind.value,
                 ", ".join(map(str, billmgr_ids)), why, len(ids), child_kind.amo_entity)
    return found


class Relinker:
    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store

    def requeue(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[Kind, list[int]]:
        """Queue what points at these entities (inside the caller's transaction); returns it."""
        return requeue_children(self.billing, self.store, kind, billmgr_ids, "re-created")

    def unlink_old(self, kind: Kind, old: Sequence[tuple[int, int]]) -> None:
        """Remove the links of the module's companies and leads to the old contacts in ``old``,
        (old amoCRM id, client id) pairs: deleted, or unlinked by an admin (best effort)."""
        if kind is not Kind.CONTACT or not old:
            return
        old_of = dict((b, a) for a, b in old)
        items: dict[Kind, list[dict[str, object]]] = {}
        for parent, children in children_by_parent(self.billing, self.store, kind, sorted(old_of)).items():
            for child_kind, ids in children.items():
                items.setdefault(child_kind, []).extend(
                    {"entity_id": amocrm_id, "to_entity_id": old_of[parent],
                     "to_entity_type": kind.amo_entity}
                    for amocrm_id in sorted(self.store.links(child_kind, ids).values()))
        for child_kind, links in items.items():
            try:
                refused = self.amo.unlink(child_kind.amo_entity, links)
            except (FixData, AmbiguousWriteError, RetryLater) as exc:
                log.warning("removing the links of %s to the old %s %s failed: %s", child_kind.amo_entity,
                            kind.amo_entity, ", ".join(str(a) for a, _ in old), exc)
                continue
            for reason in refused.values():
                log.info("not unlinked (amoCRM may no longer know the old entity): %s", reason)
