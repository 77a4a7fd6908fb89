"""The pure planner: ordering, conditions, skip reasons, deferral, bodies."""

from __future__ import annotations

from datetime import datetime

from billmgr_amocrm.domain import Kind, ServiceEvent
from billmgr_amocrm.markers import marker_value
from billmgr_amocrm.ports import AmoPayload, QueueItem
from billmgr_amocrm.sync import planner
from billmgr_amocrm.sync.planner import Inputs, Work
from tests.fakes import FakeRules, client, context, payer, service


def work(kind: Kind, i: int, reason: str = "edit") -> Work:
    return Work.of(QueueItem(i, kind, i, reason, 1, 0, datetime(2024, 1, 1)))


def test_unlinked_client_is_created_with_the_marker_and_linked_one_is_updated():
    inputs = Inputs(Kind.CONTACT, {1: client(1), 2: client(2)}, links={2: 502})
    plan = planner.plan_batch([work(Kind.CONTACT, 1), work(Kind.CONTACT, 2)], inputs, FakeRules(), context())
    assert [c.work.billmgr_id for c in plan.creates] == [1]
    assert [(u.work.billmgr_id, u.amocrm_id) for u in plan.updates] == [(2, 502)]
    values = plan.creates[0].payload.body["custom_fields_values"]
    assert values == [{"field_id": 1, "values": [{"value": marker_value(Kind.CONTACT, 1)}]}]


def test_skip_reasons_name_why_nothing_is_sent():
    rules = FakeRules(conditions={Kind.COMPANY: lambda p: p.name != "LLC 3"})
    inputs = Inputs(Kind.COMPANY, {2: payer(2, 1, profiletype=1), 3: payer(3, 1)}, links={},
                    contact_links={1: 501})
    plan = planner.plan_batch([work(Kind.COMPANY, i) for i in (1, 2, 3)], inputs, rules, context())
    reasons = {s.work.billmgr_id: s.reason for s in plan.skips}
    assert reasons[1] == planner.SKIP_GONE
    assert "profiletype 1" in reasons[2]
    assert reasons[3] == planner.SKIP_CONDITIONS
    assert not plan.creates and not plan.updates


def test_a_deleted_payer_with_a_company_departs_and_one_without_is_skipped():
    inputs = Inputs(Kind.COMPANY, {}, links={4: 904}, contact_links={})
    plan = planner.plan_batch([work(Kind.COMPANY, 4), work(Kind.COMPANY, 5)], inputs, FakeRules(), context())
    assert [(d.work.billmgr_id, d.amocrm_id) for d in plan.departures] == [(4, 904)]
    assert [(s.work.billmgr_id, s.reason) for s in plan.skips] == [(5, planner.SKIP_GONE)]
    gone_client = Inputs(Kind.CONTACT, {}, links={4: 804})     # only payers depart
    plan = planner.plan_batch([work(Kind.CONTACT, 4)], gone_client, FakeRules(), context())
    assert not plan.departures and [s.reason for s in plan.skips] == [planner.SKIP_GONE]


def test_a_lead_whose_contact_is_not_linked_waits_for_it():
    inputs = Inputs(Kind.LEAD, {7: service(7, account=1), 8: service(8, account=2)}, links={},
                    contact_links={2: 502})
    plan = planner.plan_batch([work(Kind.LEAD, 7, "open"), work(Kind.LEAD, 8, "open")], inputs,
                              FakeRules(), context())
    assert [(d.work.billmgr_id, d.needs) for d in plan.defers] == [(7, ((Kind.CONTACT, 1),))]
    assert [c.work.billmgr_id for c in plan.creates] == [8]


def test_a_lead_is_created_with_its_contact_and_company_embedded():
    inputs = Inputs(Kind.LEAD, {8: service(8, account=2)}, links={}, contact_links={2: 502},
                    company_of_account={2: 602})
    plan = planner.plan_batch([work(Kind.LEAD, 8)], inputs, FakeRules(), context())
    body = planner.create_body(Kind.LEAD, plan.creates[0], plan.parents[8])
    assert body["_embedded"] == {"contacts": [{"id": 502, "is_main": True}], "companies": [{"id": 602}]}
    assert body["request_id"] == "lead-8"
    assert planner.links_after_write(Kind.LEAD, plan.parents[8], created=True) == []


def test_an_update_adds_rule_tags_and_removes_managed_tags_that_no_longer_apply():
    payload = AmoPayload({"name": "x", "_embedded": {"tags": []}}, tags=("vip",),
                         managed_tags=("vip", "debtor"))
    update = planner.Update(work(Kind.CONTACT, 1), 501, payload)
    body = planner.update_body(Kind.CONTACT, update)
    assert body["tags_to_add"] == [{"name": "vip"}]
    assert body["tags_to_delete"] == [{"name": "debtor"}]
    assert "_embedded" not in body and body["id"] == 501


def test_an_open_intent_is_carried_so_the_engine_settles_before_creating():
    moment = datetime(2024, 5, 1, 12, 0)
    inputs = Inputs(Kind.CONTACT, {1: client(1)}, links={}, open_creates={1: moment})
    plan = planner.plan_batch([work(Kind.CONTACT, 1)], inputs, FakeRules(), context())
    assert plan.creates[0].intent_at == moment


MIRRORED = AmoPayload({"name": "VPS #8", "price": None, "first_name": "",
                       "custom_fields_values": [{"field_code": "PHONE", "values": None},
                                                {"field_id": 55, "values": [{"value": "x.ru"}]},
                                                {"field_id": 56, "values": None}]},
                      placement=(20, 21))


def test_a_create_leaves_out_what_is_empty_an_update_clears_it():
    create = planner.Create(work(Kind.LEAD, 8, "export"), MIRRORED)
    assert planner.create_body(Kind.LEAD, create, ()) == {
        "name": "VPS #8", "custom_fields_values": [{"field_id": 55, "values": [{"value": "x.ru"}]}],
        "pipeline_id": 20, "status_id": 21, "request_id": "lead-8"}
    body = planner.update_body(Kind.LEAD, planner.Update(work(Kind.LEAD, 8, "edit"), 808, MIRRORED))
    assert body["price"] is None and body["first_name"] == ""
    assert body["custom_fields_values"] == MIRRORED.body["custom_fields_values"]
    only_empty = AmoPayload({"name": "n", "custom_fields_values": [{"field_code": "EMAIL", "values": None}]})
    assert "custom_fields_values" not in planner.create_body(
        Kind.CONTACT, planner.Create(work(Kind.CONTACT, 1), only_empty), ())


def test_an_update_moves_a_lead_only_with_a_service_event():
    for reason in ("edit", "reconcile", "resync", "export", "parent"):
        body = planner.update_body(Kind.LEAD, planner.Update(work(Kind.LEAD, 8, reason), 808, MIRRORED))
        assert "pipeline_id" not in body and "status_id" not in body, reason
    for reason in ("open", "prolong"):
        body = planner.update_body(Kind.LEAD, planner.Update(work(Kind.LEAD, 8, reason), 808, MIRRORED))
        assert (body["pipeline_id"], body["status_id"]) == (20, 21), reason
    unplaced = AmoPayload({"name": "VPS #8"})
    body = planner.update_body(Kind.LEAD, planner.Update(work(Kind.LEAD, 8, "prolong"), 808, unplaced))
    assert "pipeline_id" not in body   # no rule matches: the lead stays where it is


def test_a_lead_is_planned_with_its_rows_event_else_its_last_recorded_one():
    inputs = Inputs(Kind.LEAD, {7: service(7, 1)}, links={7: 707}, contact_links={1: 501},
                    events={7: ServiceEvent.PROLONG})
    assert planner.event_of(Kind.LEAD, work(Kind.LEAD, 7, "reconcile"), inputs) is ServiceEvent.PROLONG
    assert planner.event_of(Kind.LEAD, work(Kind.LEAD, 7, "open"), inputs) is ServiceEvent.OPEN
    assert planner.event_of(Kind.LEAD, work(Kind.LEAD, 8, "resync"), inputs) is None
    assert planner.event_of(Kind.CONTACT, work(Kind.CONTACT, 7, "open"), inputs) is None
    works = [work(Kind.LEAD, 7, "prolong"), work(Kind.LEAD, 8, "edit"), work(Kind.LEAD, 9, "open")]
    assert planner.new_events(Kind.LEAD, works) == [(7, ServiceEvent.PROLONG), (9, ServiceEvent.OPEN)]
    assert planner.new_events(Kind.CONTACT, [work(Kind.CONTACT, 1, "open")]) == []
