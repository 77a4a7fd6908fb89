"""Reconciler: queue what changed without an event reaching the queue.

Every run (the daemon: hourly):

* entities with no link row whose sync conditions hold (a hook that never ran,
  a spool file lost with the disk, an install that predates the data);
* services whose opendate/expiredate moved since the last run (opened or
  prolonged by a path that skipped ``service.postopen``/``postprolong``);
* linked services whose status (suspended, active, deleted) is not what the last
  service event recorded says: the missing suspend, resume or close is queued
  (:mod:`.lifecycle`). A suspended or deleted service found without a lead is queued
  with its suspension or closure, so it is created where the rules put it;
* payers with a company that BILLmanager no longer has (deleted by a path no event reported,
  or while the hook's event was lost): queued, so their companies leave the client
  (:mod:`.unlinks`).

Once a day (``RECHECK_EVERY``, kept in the ``reconcile:recheck_at`` cursor in the
database, so it holds whichever process runs the reconciler), as soon as the settings differ
from those the last re-check ran by (a tag, a field mapping or a condition saved in the panel
changes what every linked entity should hold, and no event follows such a save; the
``reconcile:settings_rechecked`` cursor), and on demand (``amocrm reconcile --full``): every
linked entity whose current payload differs from
what was last sent, i.e. edits whose event was lost (:mod:`.recheck`; database reads
only, no amoCRM call). It needs the mapping context (the marker field ids from
amocrm.conf): without one it is skipped.

Dead-lettered rows are left alone: reviving them is the admin's "retry failed".
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

from ..domain import KIND_ORDER, Kind
from ..foundation.clock import as_utc
from ..ports import BillingReader, MappingContext, RuleSet, Store
from .lifecycle import event_for_status, queue_lifecycle_changes
from .recheck import changed_since_sent, recheck_linked
from .snapshots import read_snapshots

log = logging.getLogger(__name__)

CURSOR = "reconcile:services_since"
RECHECK_CURSOR = "reconcile:recheck_at"
# the settings (``Settings.source_version``) the last re-check ran by
SETTINGS_CURSOR = "reconcile:settings_rechecked"
# how often every linked entity is compared with what was sent (see the README for its cost)
RECHECK_EVERY = timedelta(days=1)
SCAN_CHUNK = 1000
# look back a bit further than the last run: dates have day precision
OVERLAP = timedelta(days=1)


def reconcile(store: Store, billing: BillingReader, rules: RuleSet, now: datetime,
              ctx: Optional[MappingContext] = None, *, full: bool = False,
              settings_version: Optional[str] = None) -> dict[Kind, int]:
    """Queue the missing and the silently changed; return how many rows per kind were queued.

    With ``ctx``, also the re-check of linked entities when it is due: daily, when the settings
    (``settings_version``, of ``rules``) are not those it last ran by, or ``full``."""
    queued = {kind: 0 for kind in KIND_ORDER}
    rechecked_all = False
    if ctx is not None and (full or _recheck_due(store, now) or settings_unchecked(store, settings_version)):
        rechecked_all = True
        rechecked = recheck_linked(store, billing, rules, ctx)
        store.set_cursor(RECHECK_CURSOR, as_utc(now).isoformat())
        if settings_version is not None:
            store.set_cursor(SETTINGS_CURSOR, settings_version)
        for kind, count in rechecked.queued.items():
            queued[kind] += count
    for kind in KIND_ORDER:
        failed = store.failed_ids(kind)
        for ids in billing.iter_ids(kind, 0, SCAN_CHUNK):
            linked = store.links(kind, ids)
            missing = [i for i in ids if i not in linked and i not in failed]
            if not missing:
                continue
            entities = read_snapshots(billing, kind, missing, rules)
            for reason, wanted in _missing_by_reason(kind, entities, rules).items():
                store.enqueue_many(kind, wanted, reason)
                queued[kind] += len(wanted)
    if rechecked_all:
        store.set_cursor(CURSOR, as_utc(now).isoformat())   # every linked service was just compared
    else:
        queued[Kind.LEAD] += _changed_services(store, billing, now, rules, ctx)
    queued[Kind.LEAD] += queue_lifecycle_changes(store, billing)
    queued[Kind.COMPANY] += queue_departed_payers(store, billing)
    if any(queued.values()):
        log.info("reconcile: queued %s", ", ".join(f"{n} {k.amo_entity}" for k, n in queued.items() if n))
    return queued


def _missing_by_reason(kind: Kind, entities: dict[int, Any], rules: RuleSet) -> dict[str, list[int]]:
    """The unlinked entities the rules want, by the reason they are queued with: a service's
    lifecycle event when its status gives one (so rules keyed on it answer at the create),
    else ``reconcile``."""
    found: dict[str, list[int]] = {}
    for billmgr_id, entity in entities.items():
        event = event_for_status(entity.status) if kind is Kind.LEAD else None
        if rules.wants(kind, entity, event):
            found.setdefault(event.value if event else "reconcile", []).append(billmgr_id)
    return found


def queue_departed_payers(store: Store, billing: BillingReader) -> int:
    """Queue the bound payers BILLmanager no longer has (two short reads per thousand bindings)."""
    failed = store.failed_ids(Kind.COMPANY)
    count = 0
    for ids in store.bound_ids(Kind.COMPANY, 0, SCAN_CHUNK):
        there = billing.accounts_of(Kind.COMPANY, ids)
        gone = [i for i in ids if i not in there and i not in failed]
        if gone:
            store.enqueue_many(Kind.COMPANY, gone, "reconcile")
            count += len(gone)
    return count


def settings_unchecked(store: Store, settings_version: Optional[str]) -> bool:
    """The last re-check ran by other settings than these: what was sent may not be what they make."""
    return settings_version is not None and store.get_cursor(SETTINGS_CURSOR) != settings_version


def _recheck_due(store: Store, now: datetime) -> bool:
    last = store.get_cursor(RECHECK_CURSOR)
    return last is None or as_utc(now) - as_utc(datetime.fromisoformat(last)) >= RECHECK_EVERY


def _changed_services(store: Store, billing: BillingReader, now: datetime, rules: RuleSet,
                      ctx: Optional[MappingContext]) -> int:
    """Queue the linked services opened or prolonged by a path that skipped the event.

    BILLmanager keeps no change times, so the candidates are every service whose dates are on
    or after the last run's day: every live one. Only those whose payload now differs from what
    was sent are queued (the re-check's comparison; database reads only): queueing them all
    would put every live service through the engine each hour, for nothing, and make the queue
    and the day's counts say so. Without a mapping context (no marker fields yet) nothing can
    be compared and every candidate is queued; the engine sends only what changed."""
    last = store.get_cursor(CURSOR)
    since = as_utc(datetime.fromisoformat(last)) - OVERLAP if last else as_utc(now) - OVERLAP
    failed = store.failed_ids(Kind.LEAD)
    count = 0
    for ids in billing.services_changed_since(since):
        linked = store.links(Kind.LEAD, ids)
        recheck = [i for i in ids if i in linked and i not in failed]
        if ctx is not None and recheck:
            recheck = changed_since_sent(store, billing, rules, ctx, Kind.LEAD, recheck)
        store.enqueue_many(Kind.LEAD, recheck, "reconcile")
        count += len(recheck)
    store.set_cursor(CURSOR, as_utc(now).isoformat())
    return count
