"""What a batch is planned from: BILLmanager's current state and the module's own tables.

Reads only: a batch is read and planned on its lane while other batches are being written
(:mod:`.lanes`). The reconciler reads snapshots the same way.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Mapping, Optional, Sequence

from ..domain import Kind, ServiceEvent
from ..ports import BillingReader, RuleSet, Store
from .payers import Payers, main_payer
from .planner import Inputs, Work, account_of


def read_snapshots(billing: BillingReader, kind: Kind, ids: Sequence[int], rules: RuleSet) -> dict[int, Any]:
    """BILLmanager's current state of some entities of one kind (services: only the
    itemparams the rules can read)."""
    if kind is Kind.CONTACT:
        return dict(billing.clients(ids))
    if kind is Kind.COMPANY:
        return dict(billing.payers(ids))
    return dict(billing.services(ids, rules.param_names))


def clients_of(kind: Kind, snapshots: Mapping[int, Any]) -> dict[int, int]:
    """The clients (account ids) the entities of a batch belong to, each with the newest (highest
    id) of its entities in the batch; a contact's id is its client's."""
    found: dict[int, int] = {}
    for billmgr_id, entity in snapshots.items():
        account = billmgr_id if kind is Kind.CONTACT else account_of(kind, entity)
        if account is not None:
            found[account] = max(found.get(account, billmgr_id), billmgr_id)
    return found


def gather(kind: Kind, works: Sequence[Work], billing: BillingReader, store: Store, rules: RuleSet,
           contacts_not_coming: AbstractSet[int], snapshots: Optional[Mapping[int, Any]] = None) -> Inputs:
    """Snapshots (read here unless given), links, open create intents, parent links and (leads)
    the service event history of one batch."""
    ids = sorted({w.billmgr_id for w in works})
    snapshots = dict(snapshots) if snapshots is not None else read_snapshots(billing, kind, ids, rules)
    contact_links: dict[int, int] = {}
    company_of_account: dict[int, int] = {}
    events: dict[int, ServiceEvent] = {}
    payers = Payers()
    # One unit for the batch's reads of the module's tables: each read alone is its own
    # BEGIN/COMMIT, two round trips more per read (three or four reads per batch).
    with store.transaction():
        links = store.links(kind, ids)
        creating = [i for i in ids if i not in links]
        open_creates = store.open_creates(kind, creating) if creating else {}
        if kind is not Kind.CONTACT:
            accounts = sorted({int(e.account_id) for e in snapshots.values()})
            contact_links = store.links(Kind.CONTACT, accounts)
            if kind is Kind.LEAD:
                company_of_account = companies_of(accounts, billing, store)
                events = store.service_events(ids)
            else:
                payers = payers_of(accounts, billing, store)
    return Inputs(kind, snapshots, links, open_creates, contact_links, company_of_account,
                  frozenset(contacts_not_coming), events, payers)


def legal_payers_of(accounts: Sequence[int], billing: BillingReader, store: Store) -> Payers:
    """The accounts' legal payers and the companies they have in amoCRM."""
    legal = billing.legal_payers_by_account(accounts)
    all_payers = sorted({p for ps in legal.values() for p in ps})
    return Payers(legal, store.links(Kind.COMPANY, all_payers) if all_payers else {})


def companies_of(accounts: Sequence[int], billing: BillingReader, store: Store) -> dict[int, int]:
    """Each account's main company (:mod:`.payers`: its newest legal payer's that is linked)."""
    payers = legal_payers_of(accounts, billing, store)
    found: dict[int, int] = {}
    for account in payers.legal:
        main = main_payer(account, payers)
        if main is not None:
            found[account] = payers.companies[main]
    return found


def payers_of(accounts: Sequence[int], billing: BillingReader, store: Store) -> Payers:
    """For a company batch: the accounts' legal payers, their companies and their linked leads."""
    payers = legal_payers_of(accounts, billing, store)
    items = billing.services_by_account(accounts)
    lead_links = store.links(Kind.LEAD, sorted({i for ids in items.values() for i in ids})) if items else {}
    leads = {account: {i: lead_links[i] for i in ids if i in lead_links} for account, ids in items.items()}
    return Payers(payers.legal, payers.companies, {a: found for a, found in leads.items() if found})
