"""Lost edits: what would be sent now against what was sent, for every linked entity.

An edit whose event never reached the queue (a full disk, a hook that crashed, a worker
that was down while the spool was cleared) leaves amoCRM behind with nothing queued. This
re-check finds it without asking amoCRM anything: it reads BILLmanager's current state,
plans it as the engine would (:func:`.snapshots.gather`, :func:`.planner.plan_batch`, with
the same rules and parents), and compares the fingerprint of what would be sent with the
fingerprint stored when it was last sent. Only the entities that differ are queued
(reason ``reconcile``; the engine sends nothing for a re-check that turns out unchanged).

A lead's payload may depend on the service event (open, prolong) it was last sent for,
which a re-check cannot know: a lead whose only difference is the event counts as
unchanged; so does an older payer's company that was linked to the contact while it was
the client's main company and has since been replaced there by the newer payer's (amoCRM
keeps one company per contact, so it already holds what the plan wants). Records that
failed, entities the rules no longer want, and children whose contact is not linked are
left alone (the hourly part of the reconciler, the panel's
"retry failed" and the engine handle those).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import AbstractSet, Sequence

from ..domain import KIND_ORDER, Kind, ServiceEvent
from ..ports import BillingReader, MappingContext, RuleSet, Store
from . import planner
from .batch import RECHECK_REASON
from .fingerprint import fingerprint
from .planner import Work
from .snapshots import gather

log = logging.getLogger(__name__)

CHUNK = 1000


@dataclass
class Recheck:
    """What one re-check looked at and queued, per kind."""

    checked: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in KIND_ORDER})
    queued: dict[Kind, int] = field(default_factory=lambda: {k: 0 for k in KIND_ORDER})


def recheck_linked(store: Store, billing: BillingReader, rules: RuleSet, ctx: MappingContext,
                   chunk: int = CHUNK) -> Recheck:
    """Queue every linked entity whose current payload differs from what was last sent."""
    result = Recheck()
    for kind in KIND_ORDER:
        failed = store.failed_ids(kind)
        for ids in billing.iter_ids(kind, 0, chunk):
            linked = store.links(kind, ids)
            candidates = [i for i in ids if i in linked and i not in failed]
            if not candidates:
                continue
            changed = changed_since_sent(store, billing, rules, ctx, kind, candidates)
            store.enqueue_many(kind, changed, RECHECK_REASON)
            result.checked[kind] += len(candidates)
            result.queued[kind] += len(changed)
    if any(result.queued.values()):
        log.info("re-check of linked entities: queued %s (edits whose events were lost)",
                 ", ".join(f"{n} {k.amo_entity}" for k, n in result.queued.items() if n))
    return result


def changed_since_sent(store: Store, billing: BillingReader, rules: RuleSet, ctx: MappingContext,
                       kind: Kind, ids: Sequence[int]) -> list[int]:
    """The ids (linked, of one kind) whose payload or parents now differ from what was sent."""
    works = [Work(kind, i, RECHECK_REASON) for i in ids]
    inputs = gather(kind, works, billing, store, rules, frozenset())
    plan = planner.plan_batch(works, inputs, rules, ctx)
    sent = store.fingerprints(kind, [u.work.billmgr_id for u in plan.updates])
    changed = [i for i, now in _fingerprints(plan).items() if sent.get(i) != now]
    if kind is Kind.COMPANY and changed:
        replaced = _replaced_as_contacts_company(plan, inputs, set(changed))
        return [i for i in changed if sent.get(i) != replaced.get(i)]
    if kind is not Kind.LEAD or not changed:
        return changed
    for event in ServiceEvent:
        if not changed:
            break
        again = planner.plan_batch([Work(kind, i, event.value) for i in changed], inputs, rules, ctx)
        same = {i for i, now in _fingerprints(again).items() if sent.get(i) == now}
        changed = [i for i in changed if i not in same]
    return changed


def _replaced_as_contacts_company(plan: planner.Plan, inputs: planner.Inputs,
                                  changed: AbstractSet[int]) -> dict[int, str]:
    """billmgr_id (of ``changed``) -> the fingerprint an older payer's company was sent with while
    it was the client's main company: linked to the contact. A newer payer's company linked since
    has replaced it in amoCRM (one company per contact), so that is not a change to send."""
    out: dict[int, str] = {}
    for update in plan.updates:
        payer_id = update.work.billmgr_id
        if payer_id not in changed or plan.parents.get(payer_id):
            continue   # unchanged, or the main company (its link is part of what must match)
        contact = inputs.contact_links.get(int(inputs.snapshots[payer_id].account_id))
        if contact is not None:
            was_linked = planner.Link(Kind.COMPANY, payer_id, "contacts", contact)
            out[payer_id] = fingerprint(update.payload, (was_linked,))
    return out


def _fingerprints(plan: planner.Plan) -> dict[int, str]:
    """billmgr_id -> the fingerprint of what the plan's updates would send (as the engine computes it)."""
    return {u.work.billmgr_id: fingerprint(u.payload, plan.parents.get(u.work.billmgr_id, ()))
            for u in plan.updates}
