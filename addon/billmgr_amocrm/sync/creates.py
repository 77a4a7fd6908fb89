"""Creating entities exactly once: intent, send, commit.

1. the create intents of the batch are written and committed BEFORE the POST;
2. POST (the client chunks it and says which items amoCRM refused);
3. after the answer, in ONE transaction: link + sync state + queue row done.

An answer that never came (:class:`AmbiguousWriteError`) leaves the intents open: the
rows wait ``settle_after`` and are then settled by the marker (:mod:`.settle`) before
anything is created again. Items the client never sent start over without waiting.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Callable, Mapping, Optional, Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData
from ..markers import marker_with_token
from ..ports import AmoApi, BatchOutcome, Store
from . import planner
from .links import Linker, needs_links
from .outcomes import Ledger, link_taken, refusal
from .planner import Create, Plan

log = logging.getLogger(__name__)


class Creator:
    def __init__(self, amo: AmoApi, store: Store, linker: Linker, *,
                 settle_after: float, marker_field_ids: Mapping[Kind, int],
                 fence: Callable[[Store], None] = lambda store: None) -> None:
        self.amo = amo
        self.marker_field_ids = marker_field_ids
        # checks, in the intent's transaction, that this engine still holds the lease
        self.fence = fence
        self.store = store
        self.linker = linker
        self.settle_after = settle_after

    def create(self, ledger: Ledger, kind: Kind, creates: Sequence[Create], plan: Plan) -> None:
        if not creates:
            return
        by_request = {planner.request_id(kind, c.work.billmgr_id): c for c in creates}
        # every entity this request makes carries its token: a lost answer is settled by one search
        token = secrets.token_hex(6)
        bodies = [with_token(planner.create_body(kind, c, plan.parents.get(c.work.billmgr_id, ())),
                             self.marker_field_ids.get(kind), token) for c in creates]
        with self.store.transaction():
            self.fence(self.store)
            self.store.begin_create(kind, [c.work.billmgr_id for c in creates], ledger.books.clock(), token)
        try:
            outcome = self.amo.create(kind.amo_entity, bodies)
        except AmbiguousWriteError as exc:
            self._after_lost_answer(ledger, kind, by_request, exc, plan)
            ledger.strike(exc)
            return
        except FixData as exc:
            ledger.one_by_one(kind, creates, exc, plan, self.create)
            return
        ledger.answered()
        self._commit(ledger, kind, by_request, outcome, plan)

    def _commit(self, ledger: Ledger, kind: Kind, by_request: dict[str, Create], outcome: BatchOutcome,
                plan: Plan) -> list[Create]:
        """ONE transaction: link + synced + done for every created item; return the rest."""
        now = ledger.books.clock()
        created = [(by_request[rid], int(amocrm_id)) for rid, amocrm_id in outcome.ids.items()
                   if rid in by_request]
        if not created and not outcome.rejected:
            return [c for rid, c in by_request.items() if rid not in outcome.ids]
        with ledger.unit():
            rows = [(c.work.billmgr_id, a, ledger.fingerprint(c.work, c.payload, plan)) for c, a in created]
            taken = self.store.link_created(kind, rows, now)
            for create, amocrm_id in created:
                if create.work.billmgr_id in taken:
                    # the intent stays open: the entity exists and carries this record's marker
                    ledger.fail(create.work, link_taken(kind, amocrm_id, taken[create.work.billmgr_id]))
                elif not needs_links(kind, create.work.billmgr_id, plan, created=True):
                    ledger.done(create.work)
            created = [(c, a) for c, a in created if c.work.billmgr_id not in taken]
            for rid, reason in outcome.rejected.items():
                refused = by_request.get(rid)
                if refused is not None:
                    self.store.clear_create(kind, refused.work.billmgr_id)
                    ledger.refused(refused.work, refusal(kind, reason),
                                   outcome.unknown_fields.get(rid, frozenset()), refused.payload.placement,
                                   owner=rid in outcome.owner_refused)
        if not ledger.isolating:
            ledger.gate.linked()   # batches in flight that wait for these links may be planned now
        self.linker.link(ledger, kind, [c.work for c, _ in created], plan, created=True)
        handled = set(outcome.ids) | set(outcome.rejected)
        return [c for rid, c in by_request.items() if rid not in handled]

    def _after_lost_answer(self, ledger: Ledger, kind: Kind, by_request: dict[str, Create],
                           exc: AmbiguousWriteError, plan: Plan) -> None:
        """Keep what earlier chunks made; the rest waits ``settle_after`` before its marker lookup.

        Looking the marker up now could miss a write that is still in flight at amoCRM and
        lead to a second create; items the client never sent start over without waiting."""
        rest = self._commit(ledger, kind, by_request, exc.outcome or BatchOutcome(), plan)
        if not rest:
            return
        in_doubt = set(exc.request_ids or [planner.request_id(kind, c.work.billmgr_id) for c in rest])
        unsent = [c for c in rest if planner.request_id(kind, c.work.billmgr_id) not in in_doubt]
        doubtful = [c for c in rest if planner.request_id(kind, c.work.billmgr_id) in in_doubt]
        log.warning("%s: create answer lost (%s); %d items are looked up by the marker in %.0f s",
                    kind.value, exc, len(doubtful), self.settle_after)
        with self.store.transaction():
            for create in unsent:
                self.store.clear_create(kind, create.work.billmgr_id)
                ledger.retry(create.work, f"not sent: {exc}", outage=True)
            for create in doubtful:
                ledger.retry(create.work, f"create unconfirmed: {exc}", outage=True,
                             at_least=self.settle_after)


def with_token(body: dict[str, Any], marker_field_id: Optional[int], token: str) -> dict[str, Any]:
    """The create body with the request's token beside the marker (``ports.marker_with_token``)."""
    if marker_field_id is None:
        return body
    values = []
    for item in body.get("custom_fields_values") or []:
        if item.get("field_id") == marker_field_id:
            marker = str(item["values"][0]["value"])
            item = {"field_id": marker_field_id, "values": [{"value": marker_with_token(marker, token)}]}
        values.append(item)
    return {**body, "custom_fields_values": values}
