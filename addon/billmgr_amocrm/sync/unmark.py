"""Taking the module's marker off the amoCRM entities an admin unlinked.

``amocrm unlink KIND ID`` (and the panel's Unlink) forgets a binding so that the next sync
makes a new amoCRM entity for the billing one. The old entity stays in amoCRM with what
people did on it, but it used to keep its "BILLmanager ID" marker too, so amoCRM then held
two entities naming one billing entity: the audit counted a duplicate, and an adoption
after a reinstall (``sync/adopt.py``: of two with one marker, the older) bound the old one
again, undoing the admin's decision. So the unlink notes the entity it forgot
(``amocrm_unmark``, in the same transaction as the unlink) and the next pass, before it sends
anything, takes the marker off: it reads the entities' markers (a GET per 50) and clears
the marker field of those whose marker still names the unlinked billing entity. A marker
that names another record by then is that record's; an entity bound again meanwhile keeps
its marker; an entity deleted in amoCRM needs nothing. Clearing a field is idempotent, so a
pass killed between the PATCH and the commit that forgets the row clears it once more.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Sequence

from ..domain import KIND_ORDER, Kind
from ..errors import AmbiguousWriteError, FixData
from ..markers import marker_value
from ..ports import AmoApi, BillingReader, Store
from .relink import Relinker

log = logging.getLogger(__name__)

# unlinks read and cleared a round: amoCRM's largest write batch
CHUNK = 250


class Unmarker:
    """Clears the marker of every entity an admin unlinked (see the module docstring)."""

    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store,
                 marker_field_ids: Mapping[Kind, int], *,
                 between_chunks: Callable[[], None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.marker_field_ids = marker_field_ids
        # renews the engine lease between rounds (raises when it was lost)
        self.between_chunks = between_chunks
        self.should_stop = should_stop

    def run(self) -> int:
        """Take the marker off every entity unlinked so far; how many were cleared. amoCRM's
        "not now" answers are raised to the caller; the rows left wait for the next pass."""
        cleared = 0
        for kind in KIND_ORDER:
            while not self.should_stop():
                rows = self.store.unmarks(kind, CHUNK)
                if not rows:
                    break
                done, settled = self._round(kind, rows)
                cleared += done
                self.between_chunks()
                if not settled:
                    return cleared   # an unanswered PATCH: the rest waits for the next pass
        return cleared

    def _round(self, kind: Kind, rows: Sequence[tuple[int, int]]) -> tuple[int, bool]:
        """(markers cleared, whether every row was settled)."""
        ids = [amocrm_id for amocrm_id, _ in rows]
        field_id = self.marker_field_ids.get(kind)
        if field_id is None:
            # no marker field known (a set-up not finished): no entity can carry the marker
            self.store.forget_unmarks(kind, ids)
            return 0, True
        bound_again = self.store.linked_to(kind, ids)
        asked = [(a, b) for a, b in rows if a not in bound_again]
        markers = self.amo.markers_of(kind.amo_entity, field_id, [a for a, _ in asked]) if asked else {}
        ours = [a for a, b in asked if markers.get(a) == marker_value(kind, b)]
        cleared = 0
        if ours:
            items = [{"id": a, "request_id": f"unmark-{a}",
                      "custom_fields_values": [{"field_id": field_id, "values": None}]} for a in ours]
            try:
                outcome = self.amo.update(kind.amo_entity, items)
            except AmbiguousWriteError as exc:
                log.warning("taking the marker off %d unlinked %s went unanswered; it is asked again "
                            "at the next pass: %s", len(ours), kind.amo_entity, exc.message)
                return 0, False
            except FixData as exc:
                log.warning("amoCRM refused to take the marker off %d unlinked %s (%s); they keep it",
                            len(ours), kind.amo_entity, exc)
            else:
                cleared = len(outcome.ids)
                for request_id, reason in sorted(outcome.rejected.items()):
                    log.warning("amoCRM refused to take the marker off %s %s; it keeps it: %s",
                                kind.amo_entity, request_id.split("-", 1)[1], reason)
        if kind is Kind.CONTACT:
            # the module's companies and leads of these clients stop pointing at the old contacts
            # (their relink to the new ones was queued with the unlink)
            held = [(a, b) for a, b in asked if a in markers]
            Relinker(self.amo, self.billing, self.store).unlink_old(kind, held)
        self.store.forget_unmarks(kind, ids)
        if cleared:
            log.info("took the module's marker off %d %s an admin unlinked (%s)", cleared, kind.amo_entity,
                     ", ".join(map(str, ours[:20])) + (", …" if len(ours) > 20 else ""))
        return cleared, True
