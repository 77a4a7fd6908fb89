"""Companies leave the client: POST /companies/unlink.

Two cases, planned by :mod:`.payers`:

* a payer that is no longer a legal entity (:class:`.payers.Unlink`): its company is unlinked
  from the client's contact and leads. The company itself stays in amoCRM, untouched (people
  may have history on it), and keeps its binding, so it is the one used again should the payer
  become a legal entity again;
* a payer deleted in BILLmanager (:class:`.payers.Departure`): billing no longer says whose it
  was, so the company's contacts and leads are read from amoCRM (one GET per 50 companies), and
  those the module bound, of clients BILLmanager still has, are unlinked (a deleted client's
  contact keeps its history whole; a company a manager linked to someone else stays). The
  company stays in amoCRM with its marker; its binding goes, the payer being no more. The
  client's next main company, if any, is queued to be linked to the contact.

Unlinking is idempotent: an answer lost on the way is simply retried. The unlinked leads'
fingerprints are cleared and the leads queued for a recheck, so each is sent and linked to
whatever company is main then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import AbstractSet, Any, Callable, Mapping, Optional, Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData
from ..foundation.clock import utcnow
from ..markers import billmgr_id_of
from ..ports import AmoApi, BillingReader, Store
from .outcomes import Ledger
from .payers import FOLLOW_UP_REASON, Departure, Unlink, main_payer
from .planner import Plan
from .snapshots import legal_payers_of

log = logging.getLogger(__name__)

# what the unlinked company's payer became, for the log
NOT_LEGAL = "is no longer a legal entity"
DELETED = "was deleted in BILLmanager"

# called inside the unit that completes an unlink's row
AfterUnlink = Callable[[Unlink], None]


class Unlinker:
    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store

    def unlink(self, ledger: Ledger, kind: Kind, unlinks: Sequence[Unlink], plan: Plan, *,
               why: str = NOT_LEGAL, after: Optional[AfterUnlink] = None) -> None:
        """Unlink each company from the contact and leads it names; its row is done after that
        (and ``after`` runs for it in the same unit)."""
        if not unlinks:
            return
        owners = [u for u in unlinks for _ in u.targets]
        items = [{"entity_id": u.amocrm_id, "to_entity_id": target, "to_entity_type": entity}
                 for u in unlinks for entity, target in u.targets]
        try:
            refused = self.amo.unlink(kind.amo_entity, items) if items else {}
        except FixData as exc:
            ledger.one_by_one(kind, unlinks, exc, plan, partial(Unlinker.unlink, self, why=why, after=after))
            return
        except AmbiguousWriteError as exc:
            with self.store.transaction():
                for unlink in unlinks:
                    ledger.retry(unlink.work, f"unlinking failed: {exc}", outage=True)
            ledger.strike(exc)
            return
        if items:
            ledger.answered()
        # a 400 fails its record at once with amoCRM's words (the others are unlinked)
        failed = {id(owners[index]): reason for index, reason in refused.items()}
        with ledger.unit():
            for unlink in unlinks:
                if id(unlink) in failed:
                    ledger.fail(unlink.work, failed[id(unlink)])
                    continue
                log.info("%s %s %s: amoCRM %s %s unlinked from %s", kind.value, unlink.work.billmgr_id, why,
                         kind.amo_entity, unlink.amocrm_id,
                         ", ".join(f"{entity} {target}" for entity, target in unlink.targets) or "nothing")
                ledger.done(unlink.work)
                # amoCRM no longer shows these leads on the company: forget what was sent to them
                # (their fingerprints name it), or a recheck planned once the payer is a legal
                # entity again finds "nothing changed" and never links them back
                self.store.record_synced_many(Kind.LEAD, [(item, "") for item in unlink.lead_items],
                                              utcnow())
                if after is not None:
                    after(unlink)

    def depart(self, ledger: Ledger, kind: Kind, departures: Sequence[Departure], plan: Plan) -> None:
        """Payers deleted in BILLmanager: their companies leave the module's contacts and leads
        (as amoCRM shows them) of clients BILLmanager still has; their bindings go."""
        if not departures:
            return
        leaving = company_links(self.amo, self.billing, self.store, [d.amocrm_id for d in departures])
        unlinks = [Unlink(d.work, d.amocrm_id, leaving[d.amocrm_id].targets, leaving[d.amocrm_id].items)
                   for d in departures]

        def forget(unlink: Unlink) -> None:
            self.store.drop_link(kind, unlink.work.billmgr_id)
            follow_up(self.store, self.billing, leaving[unlink.amocrm_id].accounts, unlink.lead_items)

        self.unlink(ledger, kind, unlinks, plan, why=DELETED, after=forget)


@dataclass(frozen=True)
class Leaving:
    """What a company leaving its clients takes: the module's contacts and leads amoCRM shows
    linked to it, of clients BILLmanager still has."""

    targets: tuple[tuple[str, int], ...] = ()   # (to_entity_type, to_entity_id)
    items: tuple[int, ...] = ()                 # the item ids of the bound leads among the targets
    accounts: frozenset[int] = frozenset()      # their clients


def company_links(amo: AmoApi, billing: BillingReader, store: Store, companies: Sequence[int],
                  lead_marker_field: Optional[int] = None,
                  keep: Mapping[int, int] = MappingProxyType({})) -> dict[int, Leaving]:
    """For each of these amoCRM companies: the module's contacts and leads linked to it, of
    clients BILLmanager still has (a GET per 50 companies; a company amoCRM no longer holds has
    none). A contact a manager made, and a deleted client's contact and leads, are not the
    module's to unlink. With ``lead_marker_field``, a lead not bound (yet: an adoption binds
    leads after companies) counts as the module's by its marker (a GET per 50 such leads).
    ``keep``: company -> the client whose contact and leads stay linked to it (its payer's)."""
    held = amo.get("companies", companies, with_=("contacts", "leads"))
    contacts = store.linked_to(Kind.CONTACT, _embedded(held.values(), "contacts"))
    linked_leads = _embedded(held.values(), "leads")
    bound = store.linked_to(Kind.LEAD, linked_leads)
    leads = dict(bound)
    unbound = [lead for lead in linked_leads if lead not in bound]
    if lead_marker_field is not None and unbound:
        for lead, marker in amo.markers_of(Kind.LEAD.amo_entity, lead_marker_field, unbound).items():
            item = billmgr_id_of(Kind.LEAD, marker)
            if item is not None:
                leads[lead] = item
    client_of_item = billing.accounts_of(Kind.LEAD, sorted(set(leads.values())))
    owners = sorted(set(contacts.values()) | set(client_of_item.values()))
    clients = set(billing.accounts_of(Kind.CONTACT, owners))
    found: dict[int, Leaving] = {}
    for company in companies:
        rows = [held[company]] if company in held else []
        clients_here = clients - {keep.get(company)}
        targets: list[tuple[str, int]] = []
        items: list[int] = []
        accounts: set[int] = set()
        for contact in _embedded(rows, "contacts"):
            if contacts.get(contact) in clients_here:
                targets.append(("contacts", contact))
                accounts.add(contacts[contact])
        for lead in _embedded(rows, "leads"):
            account = client_of_item.get(leads.get(lead, 0))
            if account is not None and account in clients_here:
                targets.append(("leads", lead))
                accounts.add(account)
                if lead in bound:      # one bound later is sent by its adoption
                    items.append(leads[lead])
        found[company] = Leaving(tuple(targets), tuple(items), frozenset(accounts))
    return found


def follow_up(store: Store, billing: BillingReader, accounts: AbstractSet[int],
              lead_items: Sequence[int]) -> None:
    """After a company left these clients (inside the caller's unit): the unlinked leads are
    rechecked, and each client's main company, if it has one, is queued to be linked to the
    contact (and its leads follow it)."""
    store.recheck(Kind.LEAD, sorted(lead_items))
    payers = legal_payers_of(sorted(accounts), billing, store)
    mains = sorted({p for a in accounts if (p := main_payer(a, payers)) is not None})
    store.enqueue_many(Kind.COMPANY, mains, FOLLOW_UP_REASON)


def _embedded(rows: Any, key: str) -> list[int]:
    """The ids of the ``key`` entities embedded in amoCRM's rows (``with=contacts,leads``)."""
    refs = [ref for row in rows for ref in ((row or {}).get("_embedded") or {}).get(key) or []]
    return sorted({int(r["id"]) for r in refs if isinstance(r, dict) and isinstance(r.get("id"), int)})
