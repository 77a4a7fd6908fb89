"""Suspend, resume and close reach amoCRM (issue 17, point 1).

The events the panel hooks (``service.postsuspend``/``postresume``/``postclose``) arrive as
lead rows with their reason; what no event reported is found by the reconciler from
``item.status`` against the last event recorded. Rules keyed on the event place the lead
(a suspended service in its stage, a closed one lost, 143) and answer the same on a
recheck; the suspension kind is a condition value. Against the fakes, and against MariaDB
and the emulator.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind, ServiceEvent
from billmgr_amocrm.sync import planner
from billmgr_amocrm.sync.lifecycle import missing_event
from billmgr_amocrm.sync.reconcile import reconcile
from billmgr_amocrm.sync.snapshots import gather
from tests.fakes import FakeBilling, FakeStore, client, engine_on
from tests.fakes import service as item

from .test_mirror import exported, lead_writes, manager_moves, placement, shown, stages, tags_of

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
S, R, C = ServiceEvent.SUSPEND, ServiceEvent.RESUME, ServiceEvent.CLOSE


@pytest.mark.parametrize(("status", "last", "expected"), [
    (3, None, S), (3, ServiceEvent.OPEN, S), (3, R, S), (3, S, None), (3, C, S),
    (4, None, C), (4, S, C), (4, C, None),
    (2, S, R), (2, C, R), (2, None, None), (2, ServiceEvent.OPEN, None), (2, ServiceEvent.PROLONG, None),
    (2, R, None), (1, S, None), (5, S, None), (5, None, None),
])
def test_the_missing_event_follows_the_status(status: int, last: Any, expected: Any) -> None:
    assert missing_event(status, last) is expected


def _queued(store: FakeStore) -> list[tuple[int, str]]:
    return sorted((r.billmgr_id, r.reason) for r in store.queue.values() if r.kind is Kind.LEAD)


def test_the_reconciler_queues_status_changes_no_event_reported_once() -> None:
    billing = FakeBilling()
    billing.clients_[1] = client(1)
    billing.services_.update({i: item(i, account=1) for i in (7, 8, 9, 10)})
    engine, amo, store, rules = engine_on(billing)
    store.enqueue(Kind.CONTACT, 1, "edit")
    store.enqueue_many(Kind.LEAD, [7, 8, 9, 10], "open")
    engine.run_pass()
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 0
    # the billing's cron suspends 7 and 10, an expiry closes 8; no hook runs
    for i, status in ((7, 3), (8, 4), (10, 3)):
        billing.services_[i] = replace(billing.services_[i], status=status)
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 3
    assert _queued(store) == [(7, "suspend"), (8, "close"), (10, "suspend")]
    engine.run_pass()
    assert store.service_events([7, 8, 9, 10]) == {7: S, 8: C, 9: ServiceEvent.OPEN, 10: S}
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 0      # told once: nothing more
    # 7 is paid and comes back; a new service already suspended when it is found has no lead
    billing.services_[7] = replace(billing.services_[7], status=2)
    billing.services_[11] = replace(item(11, account=1), status=3)
    billing.services_[12] = replace(item(12, account=1), status=4)
    reconcile(store, billing, rules, NOW)
    assert _queued(store) == [(7, "resume"), (11, "suspend"), (12, "close")]
    engine.run_pass()
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 0


def test_an_export_creates_suspended_and_deleted_leads_with_their_event_and_records_it() -> None:
    """A service suspended or closed long before the export: its lead is created with the event its
    status implies (rules keyed on it place the lead at once) and the event is recorded, so the
    reconciler has nothing to tell afterwards (no update per lead after a first export)."""
    billing = FakeBilling()
    billing.clients_[1] = client(1)
    billing.services_.update({7: replace(item(7, account=1), status=3),
                              8: replace(item(8, account=1), status=4), 9: item(9, account=1)})
    engine, amo, store, rules = engine_on(billing)
    store.enqueue(Kind.CONTACT, 1, "export")
    store.enqueue_many(Kind.LEAD, [7, 8, 9], "export")
    works = [planner.Work(Kind.LEAD, i, "export") for i in (7, 8, 9)]
    inputs = gather(Kind.LEAD, works, billing, store, rules, frozenset())
    seen = {w.billmgr_id: planner.event_of(Kind.LEAD, w, inputs) for w in works}
    assert seen == {7: S, 8: C, 9: None}
    engine.run_pass()
    assert store.service_events([7, 8, 9]) == {7: S, 8: C}
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 0
    assert _queued(store) == []


def test_a_failed_record_is_left_to_retry_failed() -> None:
    billing = FakeBilling()
    billing.clients_[1] = client(1)
    billing.services_[7] = item(7, account=1)
    engine, amo, store, rules = engine_on(billing)
    store.enqueue(Kind.CONTACT, 1, "edit")
    store.enqueue(Kind.LEAD, 7, "open")
    engine.run_pass()
    billing.services_[7] = replace(billing.services_[7], status=3)
    store.enqueue(Kind.LEAD, 7, "edit")
    (row,) = store.claim_after(Kind.LEAD, 1, NOW.replace(year=2100), None)
    store.fail(row, "400: refused")
    assert reconcile(store, billing, rules, NOW)[Kind.LEAD] == 0
    assert store.failed_ids(Kind.LEAD) == {7}


# ------------------------------------------------------------------ MariaDB + emulator
SUSPENDED = {"value": "service.event", "validator": "equals", "argument": "suspend"}
CLOSED = {"value": "service.event", "validator": "equals", "argument": "close"}
ABUSE = {"value": "service.suspend_kind", "validator": "equals", "argument": "abuse"}


def queued_reasons(rig: Any, *items: int) -> dict[int, str]:
    """The queued lead rows of these items that carry a service event (the rest are rechecks)."""
    with rig.app.conn.cursor() as cur:
        cur.execute("SELECT billmgr_id, reason FROM amocrm_queue WHERE kind = 'lead'")
        rows = cur.fetchall()
    rig.app.conn.commit()
    return {int(i): str(r) for i, r in rows if int(i) in items and r in {e.value for e in ServiceEvent}}


def test_suspend_resume_and_close_place_the_lead_by_the_rules_hooked_or_found(rig: Any) -> None:
    start, paused, by_hand = stages(rig)
    main_pipeline = start[0]
    rig.add_rule("pipelines", {"pipeline_id": paused[0], "status_id": paused[1], "conditions": [SUSPENDED]})
    rig.add_rule("pipelines", {"pipeline_id": main_pipeline, "status_id": 143, "conditions": [CLOSED]})
    rig.add_rule("pipelines", {"pipeline_id": start[0], "status_id": start[1]})     # a catch-all
    rig.add_rule("tags", {"entity": "lead", "tag": "abuse", "conditions": [SUSPENDED, ABUSE]})
    box = rig.sandbox
    account = box.add_client(name="Жизненный цикл", email="life@example.ru").account_id
    hooked, found, closed = (box.open_service(account, params={"domain": f"life{i}.ru"}) for i in range(3))
    exported(rig)
    service.reconcile(app=rig.app)          # the sandbox's own suspended and deleted services
    exported(rig)
    assert {placement(rig, i) for i in (hooked, found, closed)} == {start}
    # the panel suspends one for abuse: service.postsuspend -> a "suspend" lead row
    box.set_service_status(hooked, 3, "abusesuspend")
    rig.app.store.enqueue(Kind.LEAD, hooked, "suspend")
    exported(rig)
    assert placement(rig, hooked) == paused and tags_of(rig, hooked) == {"abuse"}
    # the billing's cron suspends another for non-payment and an expiry closes the third: no event
    box.set_service_status(found, 3, "autosuspend")
    box.set_service_status(closed, 4)
    service.reconcile(app=rig.app)
    assert queued_reasons(rig, hooked, found, closed) == {found: "suspend", closed: "close"}
    exported(rig)
    assert placement(rig, found) == paused and tags_of(rig, found) == set()
    assert placement(rig, closed) == (main_pipeline, 143)
    service.reconcile(app=rig.app)
    assert queued_reasons(rig, hooked, found, closed) == {}          # told once
    # a manager's move stands through a recheck; the rules keyed on the event still answer
    lead_id = rig.link(Kind.LEAD, hooked)
    manager_moves(rig, lead_id, *by_hand)
    seq = rig.request_seq()
    service.resync(Kind.LEAD, [hooked], app=rig.app)
    exported(rig)
    assert placement(rig, hooked) == by_hand and tags_of(rig, hooked) == {"abuse"}
    assert all("status_id" not in w for w in lead_writes(rig, seq, lead_id))
    # paid and resumed by the billing: found, moved by the catch-all, the abuse tag gone
    box.set_service_status(hooked, 2)
    service.reconcile(app=rig.app)
    assert queued_reasons(rig, hooked, found, closed) == {hooked: "resume"}
    exported(rig)
    assert placement(rig, hooked) == start and tags_of(rig, hooked) == set()


def test_a_cost_change_reaches_the_price_without_an_event(rig: Any) -> None:
    """The price follows the service's cost: a change no event reported is found by the recheck."""
    box = rig.sandbox
    account = box.add_client(name="Цена", email="price@example.ru").account_id
    item_id = box.open_service(account, cost=Decimal("100.00"))
    exported(rig)
    assert shown(rig, Kind.LEAD, item_id)["price"] == 100
    box.set_service_cost(item_id, Decimal("250.40"))
    assert service.reconcile(app=rig.app, full=True)["lead"] >= 1
    exported(rig)
    assert shown(rig, Kind.LEAD, item_id)["price"] == 250
