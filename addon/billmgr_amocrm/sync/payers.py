"""Which company a client has in amoCRM, and what a payer's change does to it (pure).

amoCRM gives a contact at most one company; a client may have several legal-entity
payers. The rule, one and the same for the contact and for the client's leads:

    the client's main company is the company of its NEWEST legal-entity payer (highest
    profile id) that has a company in amoCRM (or gets one in the batch being planned).

BILLmanager ties no payer to a service, so the newest legal entity is the best sign of
who pays now; the rule needs nothing but the ids, so every run gives the same answer.
Only the main payer's company is linked to the contact; an older payer's company is
kept in step but not linked (amoCRM keeps one company per contact: linking the new one
replaces the old). A payer that is no longer a legal entity is unlinked from the contact
and from the client's leads (:class:`Unlink`); its company stays in amoCRM, untouched
(people may have history on it), and its binding is kept, so the same company is used
again if the payer becomes a legal entity again. A payer deleted in BILLmanager
(:class:`Departure`) leaves the same way, but nothing in billing says whose it was: its
company's links in amoCRM name the contact and leads (:mod:`.unlinks`), and its binding is
dropped, the payer being no more. Whenever the main company may have
changed, the client's linked leads are rechecked (their parents are in their
fingerprint, so only those whose company changed are sent and re-linked), and after an
unlink the next main payer's company is queued to be linked to the contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AbstractSet, Any, Mapping, Optional, Sequence

from ..domain import Kind, Payer
from ..unverified import PROFILE_TYPE_LEGAL

if TYPE_CHECKING:
    from .planner import Inputs, Plan, Work


# the reason a company is queued with to be linked to the contact as the client's main one (sent
# even if its fingerprint is unchanged: it becomes the main company again)
FOLLOW_UP_REASON = "edit"


@dataclass(frozen=True)
class Payers:
    """What a company batch knows of its clients' payers and leads (``snapshots.gather``)."""

    # account id -> its legal-entity payer ids (ascending)
    legal: Mapping[int, Sequence[int]] = field(default_factory=dict)
    # payer id -> its company's amoCRM id, for those legal payers that have one
    companies: Mapping[int, int] = field(default_factory=dict)
    # account id -> {item id: lead amoCRM id} for the account's linked leads
    leads: Mapping[int, Mapping[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Unlink:
    """A company whose payer is no longer a legal entity leaves the client's contact and leads
    (``POST /api/v4/companies/unlink``)."""

    work: Work
    amocrm_id: int
    targets: tuple[tuple[str, int], ...]   # (to_entity_type, to_entity_id)
    lead_items: tuple[int, ...] = ()       # the item ids of the leads among the targets


@dataclass(frozen=True)
class Departure:
    """A payer deleted in BILLmanager whose company is bound: the company leaves the client's
    contact and leads (what they are is read from amoCRM), and the binding goes."""

    work: Work
    amocrm_id: int


def main_payer(account: int, payers: Payers, writing: AbstractSet[int] = frozenset()) -> Optional[int]:
    """The client's main payer: its newest legal payer with a company, or among ``writing`` (the
    client's legal payers whose companies the batch writes)."""
    linked = {p for p in payers.legal.get(account, ()) if p in payers.companies}
    return max(linked | set(writing), default=None)


def linked_leads(account: int, payers: Payers) -> list[int]:
    """Item ids of the client's leads in amoCRM (to recheck when its company changes)."""
    return sorted(payers.leads.get(account, {}))


def unlink_of(work: Work, account: int, company: int, contact: Optional[int],
              payers: Payers) -> Optional[Unlink]:
    """The unlink of a former legal payer's company from the contact and the leads (None: nothing
    is linked to it that the module knows of)."""
    targets = [("contacts", contact)] if contact is not None else []
    leads = sorted(payers.leads.get(account, {}).items())
    targets += [("leads", lead) for _, lead in leads]
    return Unlink(work, company, tuple(targets), tuple(item for item, _ in leads)) if targets else None


def plan_unlink(plan: Plan, work: Work, entity: Any, inputs: Inputs) -> bool:
    """A payer with a company that is no longer a legal entity: unlink the company, recheck the
    client's leads and queue the next main company for the contact. False: nothing to unlink."""
    if not (isinstance(entity, Payer) and entity.profiletype != PROFILE_TYPE_LEGAL):
        return False
    company = inputs.links.get(work.billmgr_id)
    if company is None:
        return False
    account = int(entity.account_id)
    unlink = unlink_of(work, account, company, inputs.contact_links.get(account), inputs.payers)
    if unlink is None:
        return False
    plan.unlinks.append(unlink)
    plan.rechecks.extend((Kind.LEAD, item) for item in linked_leads(account, inputs.payers))
    successor = main_payer(account, inputs.payers)
    if successor is not None:
        plan.requeues.append((Kind.COMPANY, successor))
    return True


def plan_departure(plan: Plan, work: Work, entity: Any, inputs: Inputs) -> bool:
    """A payer BILLmanager no longer has, with a company: its company is to leave the client.
    False: not such a payer (nothing bound, or it still exists)."""
    company = inputs.links.get(work.billmgr_id)
    if entity is not None or inputs.kind is not Kind.COMPANY or company is None:
        return False
    plan.departures.append(Departure(work, company))
    return True


def main_companies_only(plan: Plan, inputs: Inputs) -> None:
    """Only the client's main company is linked to its contact; when it is written, the client's
    leads are rechecked (their company may have changed)."""
    written = [(u.work.billmgr_id, inputs.snapshots[u.work.billmgr_id]) for u in plan.updates]
    written += [(c.work.billmgr_id, inputs.snapshots[c.work.billmgr_id]) for c in plan.creates]
    writing: dict[int, set[int]] = {}
    for payer_id, entity in written:
        writing.setdefault(int(entity.account_id), set()).add(payer_id)
    for payer_id, entity in written:
        account = int(entity.account_id)
        if main_payer(account, inputs.payers, writing[account]) == payer_id:
            plan.rechecks.extend((Kind.LEAD, item) for item in linked_leads(account, inputs.payers))
        else:
            plan.parents.pop(payer_id, None)
