"""Settling creates whose answer was lost: wait, look the marker up, adopt what is there.

An open create intent without a link means a POST was sent and its answer never made it
into our tables (timeout, lost response, crash before the commit): the entity may exist
in amoCRM. Before creating it again:

1. an intent younger than ``settle_after`` waits: its write may still be in flight at
   amoCRM, and a lookup before it lands would lead to a second create;
2. older ones are looked up by the "BILLmanager ID" marker among the entities created
   since the intent (minus a margin for clock skew), not through the lagging search index;
3. what is found is adopted (linked) and brought up to date with a PATCH; what is not
   found has its intent cleared and is created afresh (its own settle_after counts from
   its own send).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Mapping

from ..domain import Kind
from ..errors import FixData
from ..foundation.clock import as_utc
from ..ports import AmoApi, MappingContext, Store, marker_value
from .outcomes import Ledger, link_taken
from .planner import Create, Plan, Update
from .updates import Updater

log = logging.getLogger(__name__)

# Our clock and amoCRM's may disagree; look a little further back than the intent.
CLOCK_SKEW_MARGIN_SECONDS = 600


def settle_by_marker(amo: AmoApi, kind: Kind, marker_field_id: int,
                     intents: Mapping[int, datetime]) -> dict[int, int]:
    """billmgr_id -> amoCRM id for the intents whose entity already exists in amoCRM."""
    if not intents:
        return {}
    by_marker = {marker_value(kind, billmgr_id): billmgr_id for billmgr_id in intents}
    oldest = min(as_utc(moment) for moment in intents.values())
    since = int(oldest.timestamp()) - CLOCK_SKEW_MARGIN_SECONDS
    found = amo.find_by_marker(kind.amo_entity, marker_field_id, sorted(by_marker), created_since=since)
    return {by_marker[marker]: amo_id for marker, amo_id in found.items() if marker in by_marker}


class Settler:
    def __init__(self, amo: AmoApi, store: Store, updater: Updater, ctx: MappingContext, *,
                 settle_after: float) -> None:
        self.amo = amo
        self.store = store
        self.updater = updater
        self.ctx = ctx
        self.settle_after = settle_after

    def settle(self, ledger: Ledger, kind: Kind, plan: Plan) -> list[Create]:
        """Adopt entities an earlier, unanswered create already made; return what still needs a POST."""
        intents = {c.work.billmgr_id: c.intent_at for c in plan.creates if c.intent_at is not None}
        if not intents:
            return list(plan.creates)
        now = as_utc(ledger.books.clock())
        waits = {b: self.settle_after - (now - as_utc(at)).total_seconds() for b, at in intents.items()}
        young = {b for b, wait in waits.items() if wait > 0}
        if young:
            with self.store.transaction():
                for create in plan.creates:
                    if create.work.billmgr_id in young:
                        ledger.wait(create.work, "create unconfirmed: an earlier write may still be "
                                    "in flight", waits[create.work.billmgr_id])
            intents = {b: at for b, at in intents.items() if b not in young}
        creates = [c for c in plan.creates if c.work.billmgr_id not in young]
        if not intents:
            return creates
        try:
            found = settle_by_marker(self.amo, kind, self._marker_field(kind), intents)
        except FixData as exc:
            # amoCRM refused the lookup itself (400): asking again cannot help. The intents stay
            # open: whether the entity exists is still unknown, and a retry must look again.
            with self.store.transaction():
                for create in creates:
                    if create.work.billmgr_id in intents:
                        ledger.fail(create.work, f"looking up the BILLmanager ID marker failed: {exc}")
            return [c for c in creates if c.work.billmgr_id not in intents]
        if found:
            log.info("%s: adopted %d entities an unanswered create had made: %s", kind.value,
                     len(found), ", ".join(f"{b}->{a}" for b, a in sorted(found.items())))
        with self.store.transaction():
            taken = self.store.put_links(kind, sorted(found.items()))
            # Not found after settle_after: no earlier attempt can still land, so the next
            # POST's intent starts afresh (its own settle_after counts from its own send).
            for billmgr_id in sorted(set(intents) - set(found)):
                self.store.clear_create(kind, billmgr_id)
            # found, but its entity stands for another record already: the intent stays open
            # (the entity exists), the record fails until an admin untangles them
            for create in creates:
                billmgr_id = create.work.billmgr_id
                if billmgr_id in taken:
                    ledger.fail(create.work, link_taken(kind, found.pop(billmgr_id), taken[billmgr_id]))
        ledger.report.adopted += len(found)
        adopted = [Update(c.work, found[c.work.billmgr_id], c.payload) for c in creates
                   if c.work.billmgr_id in found]
        # the adopted entity may hold an older state: push the current one as an update
        recreate = self.updater.update(ledger, kind, adopted, plan)
        return [c for c in creates if c.work.billmgr_id not in found and c.work.billmgr_id not in taken] \
            + recreate

    def _marker_field(self, kind: Kind) -> int:
        field_id = self.ctx.marker_field_ids.get(kind)
        if field_id is None:
            raise RuntimeError(f"the BILLmanager ID field of {kind.amo_entity} is unknown; run fields setup")
        return field_id
