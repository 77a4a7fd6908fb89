"""Companies of payers that are no longer legal entities leave the client: POST /companies/unlink.

The company itself stays in amoCRM, untouched (people may have history on it), and keeps its
binding, so it is the one used again should the payer become a legal entity again
(:mod:`.payers`). Unlinking is idempotent: an answer lost on the way is simply retried. The
unlinked leads' fingerprints are cleared, so the next push of each (the recheck an unlink or a
new main company queues) sends it and links it to whatever company is main then.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..domain import Kind
from ..errors import AmbiguousWriteError, FixData
from ..foundation.clock import utcnow
from ..ports import AmoApi, Store
from .outcomes import Ledger
from .payers import Unlink
from .planner import Plan

log = logging.getLogger(__name__)


class Unlinker:
    def __init__(self, amo: AmoApi, store: Store) -> None:
        self.amo = amo
        self.store = store

    def unlink(self, ledger: Ledger, kind: Kind, unlinks: Sequence[Unlink], plan: Plan) -> None:
        """Unlink each company from the contact and leads it names; its row is done after that."""
        if not unlinks:
            return
        owners = [u for u in unlinks for _ in u.targets]
        items = [{"entity_id": u.amocrm_id, "to_entity_id": target, "to_entity_type": entity}
                 for u in unlinks for entity, target in u.targets]
        try:
            refused = self.amo.unlink(kind.amo_entity, items)
        except FixData as exc:
            ledger.one_by_one(kind, unlinks, exc, plan, self.unlink)
            return
        except AmbiguousWriteError as exc:
            with self.store.transaction():
                for unlink in unlinks:
                    ledger.retry(unlink.work, f"unlinking failed: {exc}", outage=True)
            ledger.strike(exc)
            return
        ledger.answered()
        # a 400 fails its record at once with amoCRM's words (the others are unlinked)
        failed = {id(owners[index]): reason for index, reason in refused.items()}
        with ledger.unit():
            for unlink in unlinks:
                if id(unlink) in failed:
                    ledger.fail(unlink.work, failed[id(unlink)])
                    continue
                log.info("%s %s is no longer a legal entity: amoCRM %s %s unlinked from %s",
                         kind.value, unlink.work.billmgr_id, kind.amo_entity, unlink.amocrm_id,
                         ", ".join(f"{entity} {target}" for entity, target in unlink.targets))
                ledger.done(unlink.work)
                # amoCRM no longer shows these leads on the company: forget what was sent to them
                # (their fingerprints name it), or a recheck planned once the payer is a legal
                # entity again finds "nothing changed" and never links them back
                self.store.record_synced_many(Kind.LEAD, [(item, "") for item in unlink.lead_items],
                                              utcnow())
