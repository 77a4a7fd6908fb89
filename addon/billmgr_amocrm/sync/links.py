"""Parent links that cannot travel in the write itself: POST /{entity}/link.

A company cannot carry its contact when it is created, and an updated lead's contact and
company are (re)linked after the PATCH. The row is done only once its links are made.

A link amoCRM refuses (400) fails its record at once with amoCRM's words: resending the
same link cannot succeed. Its parent is queued for a push, which finds a parent deleted in
amoCRM and re-creates it (and the failed record comes back with it). A lost answer is an
outage (linking twice is harmless), retried later without counting against the record.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData
from ..ports import AmoApi, Store
from . import planner
from .outcomes import Ledger
from .planner import Link, Plan, Work

# the queue reason of a parent pushed because a child needs it
PARENT_REASON = "parent"


def needs_links(kind: Kind, billmgr_id: int, plan: Plan, *, created: bool) -> bool:
    return bool(planner.links_after_write(kind, plan.parents.get(billmgr_id, ()), created))


class Linker:
    def __init__(self, amo: AmoApi, store: Store) -> None:
        self.amo = amo
        self.store = store

    def link(self, ledger: Ledger, kind: Kind, works: Sequence[Work], plan: Plan, *, created: bool,
             sent: Optional[Mapping[int, str]] = None) -> None:
        """POST /{entity}/link for parents not embedded in the write; done only after it.

        ``sent``: billmgr_id -> fingerprint of an update whose sync state is recorded here,
        once its links are made (see :mod:`.updates`)."""
        wanted: list[tuple[Work, Link]] = []
        for work in works:
            for link in planner.links_after_write(kind, plan.parents.get(work.billmgr_id, ()), created):
                wanted.append((work, link))
        if not wanted:
            return
        owners = {w.billmgr_id: w for w, _ in wanted}
        links = self.store.links(kind, sorted(owners))
        items = []
        for work, link in wanted:
            item: dict[str, Any] = {"entity_id": links[work.billmgr_id], "to_entity_id": link.to_entity_id,
                                    "to_entity_type": link.to_entity}
            if link.is_main:
                item["metadata"] = {"is_main": True}
            items.append(item)
        # a company's links follow those of earlier batches of its client (lanes.Gate.linking)
        with ledger.gate.linking():
            try:
                refused = self.amo.link(kind.amo_entity, items)
            except AmbiguousWriteError as exc:
                # a lost answer to a link is an outage (linking twice is harmless): it must not
                # count against the record like amoCRM refusing the link does
                with self.store.transaction():
                    for work in owners.values():
                        ledger.retry(work, f"linking failed: {exc}", outage=True)
                ledger.strike(exc)
                return
            except FixData as exc:
                # amoCRM refused the call as a whole: the same call would be refused again
                refused = {n: str(exc) for n in range(len(items))}
        ledger.answered()
        reasons: dict[int, list[str]] = {}
        for index, reason in refused.items():
            reasons.setdefault(wanted[index][0].billmgr_id, []).append(reason)
        with ledger.unit():
            linked = [b for b in owners if b not in reasons]
            if sent:
                self.store.record_synced_many(kind, [(b, sent[b]) for b in linked if b in sent],
                                              ledger.books.clock())
            for billmgr_id, work in owners.items():
                if billmgr_id in reasons:
                    ledger.fail(work, "; ".join(dict.fromkeys(reasons[billmgr_id])))
                else:
                    ledger.done(work)
            self._check_parents([wanted[index][1] for index in refused])

    def _check_parents(self, refused: Sequence[Link]) -> None:
        """Queue the parents of refused links for a push: amoCRM refuses a link to an entity
        deleted in its UI, and only a push finds that out and re-creates it (which queues
        the failed child again, :mod:`.relink`). A live parent's push changes nothing."""
        parents: dict[Kind, set[int]] = {}
        for link in refused:
            parent_kind = Kind.CONTACT if link.to_entity == Kind.CONTACT.amo_entity else Kind.COMPANY
            parents.setdefault(parent_kind, set()).add(link.to_entity_id)
        for parent_kind, amocrm_ids in parents.items():
            billmgr_ids = sorted(self.store.linked_to(parent_kind, sorted(amocrm_ids)).values())
            self.store.enqueue_many(parent_kind, billmgr_ids, PARENT_REASON)
