"""One planned batch applied in the order the exactly-once protocol needs.

0. the service events the batch's rows carry become the items' last events (the
   history later rechecks and resyncs of the same items are planned with), and the
   rows the plan follows up are queued (leads to recheck after a client's company
   changed, the next main company after an unlink: :mod:`.payers`);
1. a re-check whose payload did not change sends nothing;
2. skips are completed; children whose contact is not linked yet queue the contact;
3. companies of former legal payers and of deleted ones are unlinked (:mod:`.unlinks`); creates with an
   open intent are settled by the marker (:mod:`.settle`);
4. updates are PATCHed; entities deleted in amoCRM come back as creates (:mod:`.updates`);
5. the rest is created (:mod:`.creates`); parent links follow (:mod:`.links`).

Auth and account states (``Reauthorize``, ``Stop``) end the pass with the queue
untouched; ``RetryLater`` reschedules what the batch had not handled and ends the pass.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..domain import Kind
from ..errors import LeaseLost, Reauthorize, RetryLater, Stop
from . import planner
from .creates import Creator
from .links import PARENT_REASON
from .outcomes import Ledger, PassStopped, Report
from .payers import FOLLOW_UP_REASON
from .planner import Plan, Work
from .settle import Settler
from .unlinks import Unlinker
from .updates import Updater

log = logging.getLogger(__name__)

RECHECK_REASON = "reconcile"


@dataclass(frozen=True)
class Prepared:
    """A batch read and planned, not yet written."""

    kind: Kind
    works: list[Work]
    plan: Plan
    # billmgr_id -> fingerprint of what the plan sends
    fingerprints: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Steps:
    """The parts that write to amoCRM, in protocol order."""

    settler: Settler
    updater: Updater
    creator: Creator
    unlinker: Unlinker
    # a lead waiting for its contact: short, it is usually synced in the same pass
    defer_seconds: float


def apply_batch(prepared: Prepared, ledger: Ledger, steps: Steps) -> Report:
    """Write one planned batch; raises :class:`PassStopped` when amoCRM cannot be used now."""
    kind, plan = prepared.kind, prepared.plan
    _record_history(ledger, prepared)
    _drop_unchanged(ledger, plan)
    _apply_skips(ledger, plan)
    _apply_defers(ledger, plan, steps.defer_seconds)
    pending = [c.work for c in plan.creates] + [u.work for u in plan.updates] + [u.work for u in plan.unlinks]
    pending += [d.work for d in plan.departures]
    with pass_stops(lambda exc: ledger.reschedule_unfinished(pending, exc)):
        steps.unlinker.unlink(ledger, kind, plan.unlinks, plan)
        steps.unlinker.depart(ledger, kind, plan.departures, plan)
        creates = steps.settler.settle(ledger, kind, plan)
        recreate = steps.updater.update(ledger, kind, plan.updates, plan)
        steps.creator.create(ledger, kind, creates + recreate, plan)
    return ledger.report


@contextmanager
def pass_stops(on_retry_later: Callable[[RetryLater], None] = lambda exc: None) -> Iterator[None]:
    """amoCRM's "not now" answers (and a lost lease) raised inside become :class:`PassStopped`,
    the queue kept; ``on_retry_later`` reschedules what was not handled before the pass ends."""
    try:
        yield
    except RetryLater as exc:
        on_retry_later(exc)
        raise PassStopped("retry_later", exc) from exc
    except Reauthorize as exc:
        log.error("amoCRM needs re-authorization; the queue is kept: %s", exc)
        raise PassStopped("reauthorize", exc) from exc
    except Stop as exc:
        log.error("amoCRM stopped serving the account (%s); the queue is kept: %s", exc.reason, exc)
        raise PassStopped("stopped", exc) from exc
    except LeaseLost as exc:
        # nothing more is sent: open intents are settled by the marker by whoever runs next.
        # A warning, not an error: the engine is fenced as designed and nothing is asked of the
        # admin (a MariaDB restart or a KILL of the lease's session lands here)
        log.warning("%s; this pass stops, the queue is kept", exc)
        raise PassStopped("lease_lost", exc) from exc


def _record_history(ledger: Ledger, prepared: Prepared) -> None:
    """The rows' service events are now the items' last ones (BILLmanager keeps no history),
    and the rows the plan follows up are queued.

    Done when the batch is applied, whatever becomes of each row: the event happened in
    BILLmanager either way, and every later plan of the item must see it; a follow-up that
    finds nothing changed sends nothing."""
    plan, store = prepared.plan, ledger.store
    events = planner.new_events(prepared.kind, prepared.works) + plan.implied_events
    if not (events or plan.rechecks or plan.requeues):
        return
    with store.transaction():
        store.record_service_events(events, ledger.books.clock())
        for kind, ids in _by_kind(plan.rechecks).items():
            store.recheck(kind, ids)
        for kind, ids in _by_kind(plan.requeues).items():
            store.enqueue_many(kind, ids, FOLLOW_UP_REASON)


def _by_kind(rows: list[tuple[Kind, int]]) -> dict[Kind, list[int]]:
    found: dict[Kind, list[int]] = {}
    for kind, billmgr_id in rows:
        found.setdefault(kind, []).append(billmgr_id)
    return {kind: sorted(set(ids)) for kind, ids in found.items()}


def _drop_unchanged(ledger: Ledger, plan: Plan) -> None:
    """A reconciler re-check of an entity whose payload did not change sends nothing."""
    rechecks = [u for u in plan.updates if u.work.reason == RECHECK_REASON]
    if not rechecks:
        return
    sent = ledger.store.fingerprints(plan.kind, [u.work.billmgr_id for u in rechecks])
    same = {u.work.billmgr_id for u in rechecks
            if sent.get(u.work.billmgr_id) == ledger.fingerprint(u.work, u.payload, plan)}
    if not same:
        return
    plan.updates = [u for u in plan.updates if u.work.billmgr_id not in same]
    with ledger.unit():
        for update in rechecks:
            if update.work.billmgr_id in same:
                ledger.unchanged(update.work)


def _apply_skips(ledger: Ledger, plan: Plan) -> None:
    if not plan.skips:
        return
    with ledger.unit():
        for skip in plan.skips:
            log.info("%s %s skipped: %s", plan.kind.value, skip.work.billmgr_id, skip.reason)
            ledger.skipped(skip.work)


def _apply_defers(ledger: Ledger, plan: Plan, defer_seconds: float) -> None:
    """A child whose contact is not linked: queue the contact (synced first in this pass)."""
    if not plan.defers:
        return
    store, deferred_once = ledger.store, ledger.state.deferred_once
    with store.transaction():
        for defer in plan.defers:
            key = (plan.kind, defer.work.billmgr_id)
            for need_kind, need_id in defer.needs:
                store.enqueue(need_kind, need_id, PARENT_REASON)
            ledger.report.deferred += 1
            if defer.work.item is None:
                store.enqueue(plan.kind, defer.work.billmgr_id, defer.work.reason)
            elif key in deferred_once:
                store.retry(defer.work.item, "waiting for the client's contact", defer_seconds)
            deferred_once.add(key)
