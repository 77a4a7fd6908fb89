"""PATCH what amoCRM already holds; an entity deleted there is re-created and re-linked.

An update carries only the fields the module owns (:func:`.planner.update_body`); a
PATCH is idempotent, so an unanswered one is simply resent later. What amoCRM refused
fails with its reason; an entity that is gone (deleted in amoCRM's UI) comes back as a
create, unless ``sync.recreate_deleted`` is off, and what pointed at it is queued to be
linked to the new one (:mod:`.relink`).
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData
from ..ports import AmoApi, Store
from . import planner
from .links import Linker, needs_links
from .outcomes import Ledger, refusal
from .planner import Create, Plan, Update
from .relink import Relinker

log = logging.getLogger(__name__)


class Updater:
    def __init__(self, amo: AmoApi, store: Store, linker: Linker, relinker: Relinker, *,
                 recreate_deleted: bool) -> None:
        self.amo = amo
        self.store = store
        self.linker = linker
        self.relinker = relinker
        # amocrm.conf sync.recreate_deleted: an entity deleted in amoCRM is made again (else: failed)
        self.recreate_deleted = recreate_deleted

    def update(self, ledger: Ledger, kind: Kind, updates: Sequence[Update], plan: Plan) -> list[Create]:
        """PATCH owned fields; return creates for entities that were deleted in amoCRM."""
        if not updates:
            return []
        by_request = {planner.request_id(kind, u.work.billmgr_id): u for u in updates}
        handed = ledger.state.reassign
        bodies = [planner.update_body(kind, u, hand_over=(kind, u.work.billmgr_id) in handed)
                  for u in updates]
        try:
            outcome = self.amo.update(kind.amo_entity, bodies)
        except FixData as exc:
            recreate: list[Create] = []
            ledger.one_by_one(kind, updates, exc, plan,
                              lambda led, k, us, p: recreate.extend(self.update(led, k, us, p)))
            return recreate
        except AmbiguousWriteError as exc:
            # a PATCH is idempotent: resending it later is harmless; an outage ends the pass
            with self.store.transaction():
                for update in updates:
                    ledger.retry(update.work, str(exc), outage=True)
            ledger.strike(exc)
            return []
        ledger.answered()
        by_amocrm_id = {u.amocrm_id: u for u in updates}
        patched_all: list[Update] = []
        for rid, amocrm_id in outcome.ids.items():
            # amoCRM once echoed the entity id instead of request_id on a PATCH: match both
            patched = by_request.get(rid) or by_amocrm_id.get(int(amocrm_id))
            if patched is not None:
                patched_all.append(patched)
        now = ledger.books.clock()
        recreate = []
        # What was sent is recorded when the record is done: after its links for one that needs
        # them. A fingerprint recorded before a link that then failed would tell a later
        # re-check that the link is made, and it would never be made.
        linking = {u.work.billmgr_id for u in patched_all if needs_links(kind, u.work.billmgr_id, plan,
                                                                          created=False)}
        sent = {u.work.billmgr_id: ledger.fingerprint(u.work, u.payload, plan) for u in patched_all}
        with ledger.unit():
            self.store.record_synced_many(kind, [(b, f) for b, f in sent.items() if b not in linking], now)
            for patched in patched_all:
                if patched.work.billmgr_id not in linking:
                    ledger.done(patched.work)
            for rid, reason in outcome.rejected.items():
                refused = by_request.get(rid)
                if refused is not None:
                    placed = refused.payload.placement if planner.moves(kind, refused.work) else None
                    ledger.refused(refused.work, refusal(kind, reason),
                                   outcome.unknown_fields.get(rid, frozenset()), placed,
                                   owner=rid in outcome.owner_refused, patched=True)
            for rid in outcome.missing:
                gone = by_request.get(rid)
                if gone is not None:
                    recreate += self._gone(ledger, kind, gone)
            if recreate:
                self.relinker.requeue(kind, [c.work.billmgr_id for c in recreate])
        if recreate:
            coming_back = {c.work.billmgr_id for c in recreate}
            self.relinker.unlink_old(kind, [(u.amocrm_id, u.work.billmgr_id) for u in updates
                                            if u.work.billmgr_id in coming_back])
        self.linker.link(ledger, kind, [u.work for u in patched_all], plan, created=False,
                         sent={b: f for b, f in sent.items() if b in linking})
        return recreate

    def _gone(self, ledger: Ledger, kind: Kind, gone: Update) -> list[Create]:
        if not self.recreate_deleted:
            ledger.fail(gone.work, f"amoCRM {kind.amo_entity} {gone.amocrm_id} was deleted in amoCRM "
                                   "and re-creating is off (sync.recreate_deleted)")
            return []
        log.warning("%s %s: amoCRM %s %s was deleted in amoCRM; re-creating and re-linking",
                    kind.value, gone.work.billmgr_id, kind.amo_entity, gone.amocrm_id)
        self.store.drop_link(kind, gone.work.billmgr_id)
        ledger.report.recreated += 1
        return [Create(gone.work, gone.payload)]
