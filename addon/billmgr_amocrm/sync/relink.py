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


class Relinker:
    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store

    def children(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[Kind, list[int]]:
        """The linked entities that point at these (re-created) ones, per kind."""
        if kind is Kind.CONTACT:
            accounts = sorted(set(billmgr_ids))
            payers = self.billing.legal_payers_by_account(accounts)
            companies = sorted(self.store.links(Kind.COMPANY, [p for ps in payers.values() for p in ps]))
        elif kind is Kind.COMPANY:
            accounts = sorted({p.account_id for p in self.billing.payers(billmgr_ids).values()})
            companies = []
        else:
            return {}
        services = self.billing.services_by_account(accounts)
        leads = sorted(self.store.links(Kind.LEAD, [s for ss in services.values() for s in ss]))
        return {k: ids for k, ids in ((Kind.COMPANY, companies), (Kind.LEAD, leads)) if ids}

    def requeue(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[Kind, list[int]]:
        """Queue what points at these entities (inside the caller's transaction); returns it."""
        found = self.children(kind, billmgr_ids)
        for child_kind, ids in found.items():
            self.store.enqueue_many(child_kind, ids, RELINK_REASON)
            log.info("%s %s re-created: %d %s queued to be linked to it again", kind.value,
                     ", ".join(map(str, billmgr_ids)), len(ids), child_kind.amo_entity)
        return found

    def unlink_old(self, kind: Kind, old_ids: Sequence[int], children: dict[Kind, list[int]]) -> None:
        """Remove the links of ``children`` to the deleted contacts ``old_ids`` (best effort)."""
        if kind is not Kind.CONTACT or not old_ids:
            return
        for child_kind, ids in children.items():
            linked = self.store.links(child_kind, ids)
            items = [{"entity_id": amocrm_id, "to_entity_id": old, "to_entity_type": kind.amo_entity}
                     for amocrm_id in sorted(linked.values()) for old in old_ids]
            if not items:
                continue
            try:
                refused = self.amo.unlink(child_kind.amo_entity, items)
            except (FixData, AmbiguousWriteError, RetryLater) as exc:
                log.warning("removing the links of %s to the deleted %s %s failed: %s", child_kind.amo_entity,
                            kind.amo_entity, ", ".join(map(str, old_ids)), exc)
                continue
            for reason in refused.values():
                log.info("not unlinked (amoCRM may no longer know the deleted entity): %s", reason)
