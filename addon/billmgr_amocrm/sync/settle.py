"""Settling creates whose answer was lost: wait, look the marker up, adopt what is there.

An open create intent without a link means a POST was sent and its answer never made it
into our tables (timeout, lost response, crash before the commit): the entity may exist
in amoCRM. Before creating it again:

1. an intent younger than ``settle_after`` waits: its write may still be in flight at
   amoCRM, and a lookup before it lands would lead to a second create; waiting costs the
   record no attempt;
2. older ones are looked up by their create request's token (every entity that request
   made carries it in its "BILLmanager ID" field, ``ports.marker_with_token``): one search
   finds them all. What the search does not find (its index lags) is looked for among the
   entities created since the intent (minus a margin for clock skew), ordered by id, at
   most ``MAX_SCAN_PAGES`` pages per round; a round that stops at that budget keeps the
   intent open and the next one goes on from where it stopped (a cursor), so a round's
   cost is bounded whatever the backlog;
3. what is found is adopted (linked) and brought up to date with a PATCH, which writes the
   plain marker back; what a complete lookup did not find has its intent cleared and is
   created afresh (its own settle_after counts from its own send).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Mapping

from ..domain import Kind
from ..errors import FixData
from ..foundation.clock import as_utc
from ..markers import marker_value
from ..ports import AmoApi, MappingContext, Store
from .outcomes import Ledger, link_taken
from .planner import Create, Plan, Update
from .updates import Updater

log = logging.getLogger(__name__)

# Our clock and amoCRM's may disagree; a scan looks a little further back than the intent.
CLOCK_SKEW_MARGIN_SECONDS = 600
# pages of entities one lookup may read when the token search did not find everything: the
# cost of a settle round is bounded whatever the backlog; the next round goes on from there
MAX_SCAN_PAGES = 4
# how soon a lookup that stopped at its page budget goes on
SCAN_AGAIN_SECONDS = 5.0
CURSOR = "settle:{kind}:{token}"


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
            found, unresolved = self._look_up(kind, intents, ledger.state.token_hits)
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
            # Not found after settle_after, the lookup complete: no earlier attempt can still land,
            # so the next POST's intent starts afresh (its own settle_after counts from its own send).
            for billmgr_id in sorted(set(intents) - set(found) - unresolved):
                self.store.clear_create(kind, billmgr_id)
            for create in creates:
                billmgr_id = create.work.billmgr_id
                if billmgr_id in unresolved:
                    ledger.wait(create.work, "create unconfirmed: the marker lookup goes on",
                                SCAN_AGAIN_SECONDS)
                # found, but its entity stands for another record already: the intent stays open
                # (the entity exists), the record fails until an admin untangles them
                elif billmgr_id in taken:
                    ledger.fail(create.work, link_taken(kind, found.pop(billmgr_id), taken[billmgr_id]))
        ledger.report.adopted += len(found)
        adopted = [Update(c.work, found[c.work.billmgr_id], c.payload) for c in creates
                   if c.work.billmgr_id in found]
        # the adopted entity may hold an older state: push the current one as an update
        recreate = self.updater.update(ledger, kind, adopted, plan)
        waiting = set(found) | unresolved | set(taken)
        return [c for c in creates if c.work.billmgr_id not in waiting] + recreate

    def _look_up(self, kind: Kind, intents: Mapping[int, datetime],
                 hits: dict[tuple[Kind, str], dict[str, int]]) -> tuple[dict[int, int], set[int]]:
        """(billmgr_id -> amoCRM id found, ids whose lookup stopped at its page budget).

        A token searched before in this pass is not searched again: the rows of one lost
        create often land in several batches."""
        tokens = self.store.intent_tokens(kind, sorted(intents))
        groups: dict[str, list[int]] = {}
        for billmgr_id in sorted(intents):
            groups.setdefault(tokens.get(billmgr_id, ""), []).append(billmgr_id)
        found: dict[int, int] = {}
        unresolved: set[int] = set()
        for token, ids in groups.items():
            cursor = CURSOR.format(kind=kind.value, token=token or "none")
            resume = self.store.get_cursor(cursor)
            oldest = min(as_utc(intents[b]) for b in ids)
            since = int(resume) if resume else int(oldest.timestamp()) - CLOCK_SKEW_MARGIN_SECONDS
            by_marker = {marker_value(kind, b): b for b in ids}
            known = hits.get((kind, token)) if token else None
            if known is not None and set(by_marker) <= set(known):
                found.update({by_marker[m]: a for m, a in known.items() if m in by_marker})
                continue
            search = self.amo.find_by_marker(kind.amo_entity, self._marker_field(kind), sorted(by_marker),
                                             token=token, created_since=since, max_pages=MAX_SCAN_PAGES)
            found.update({by_marker[m]: a for m, a in search.found.items() if m in by_marker})
            if token:
                hits.setdefault((kind, token), {}).update(search.found)
            if search.complete:
                if resume:
                    self.store.set_cursor(cursor, "")
                continue
            unresolved |= {b for b in ids if b not in found}
            if search.resume_from is not None:
                self.store.set_cursor(cursor, str(search.resume_from))
        return found, unresolved

    def _marker_field(self, kind: Kind) -> int:
        field_id = self.ctx.marker_field_ids.get(kind)
        if field_id is None:
            raise RuntimeError(f"the BILLmanager ID field of {kind.amo_entity} is unknown; run fields setup")
        return field_id
