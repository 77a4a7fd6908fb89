"""The sync core against MariaDB (sandbox BILLmanager + module tables) and the amoCRM emulator.

Every test starts from the ``rig``: an authorized module whose initial export was
requested by ``service.authorize``; ``rig.sync()`` is one worker pass.
"""

from __future__ import annotations

import logging

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.markers import marker_value


def exported(rig):
    report = rig.sync()
    assert report.stopped is None, report.stop_reason
    assert report.failed == 0, report.failures
    return report


def first_account(rig) -> int:
    return int(rig.sandbox.query("SELECT MIN(id) FROM account")[0][0])


def field_of(rig, entity: str, field_type: str) -> dict:
    return next(f for f in rig.app.amo().custom_fields(entity) if f["type"] == field_type and f.get("enums"))


def test_the_first_pass_after_authorization_exports_everything_once(rig):
    assert service.status(app=rig.app).export_requested
    exported(rig)
    status = service.status(app=rig.app)
    assert not status.export_requested and status.queue_depth == 0 and status.failed == 0
    assert [e.finished for e in status.export] == [True, True, True]
    for kind in Kind:
        counts = rig.marker_counts(kind.amo_entity)
        assert counts and max(counts.values()) == 1
        assert status.linked[kind.value] == len(counts) == len(rig.all_links(kind))


def test_one_invalid_record_in_fifty_fails_alone_after_one_attempt_with_amocrms_reason(rig):
    exported(rig)
    box = rig.sandbox
    fresh = [box.add_client(name=f"Batch Client {n}", email=f"batch{n}@example.com").account_id
             for n in range(50)]
    bad = fresh[13]
    box.edit_client(bad, name="Broken Client")
    select = field_of(rig, "contacts", "select")
    # only the broken client maps to an option amoCRM does not have: amoCRM refuses that one item
    rig.add_rule("fields", {"entity": "contact", "field_id": select["id"], "field_type": "select",
                            "value": "client.name", "enum_map": {"Broken Client": 987654321}})
    service.resync(Kind.CONTACT, fresh, app=rig.app)
    seq = rig.request_seq()
    report = rig.sync()
    assert report.done == 49 and report.failed == 1
    assert sorted(rig.all_links(Kind.CONTACT).keys() & set(fresh)) == sorted(set(fresh) - {bad})
    (failure,) = service.failed(app=rig.app)
    assert (failure.kind, failure.billmgr_id, failure.attempts) == ("contact", bad, 1)
    assert "amoCRM refused contacts" in failure.reason and "enum_id" in failure.reason
    posts = rig.requests_since(seq, "POST", "/api/v4/contacts")
    assert [len(p["body"]) for p in posts] == [50, 49]   # the 400 wrote nothing; the rest went again
    assert rig.link(Kind.CONTACT, bad) is None
    # a second pass does not send the failed record again
    seq = rig.request_seq()
    assert rig.sync().handled == 0 and not rig.requests_since(seq, "POST")


IGNORED_PATCH = pytest.mark.xfail(
    strict=True, reason="if amoCRM answers 200 to a PATCH of a deleted entity (emulator mode 'ignore'), "
    "AmoClient.update cannot tell it is gone; only a read would (open question in the API reference)")


@pytest.mark.parametrize("mode", ["validation", "errors", pytest.param("ignore", marks=IGNORED_PATCH)])
def test_a_contact_deleted_in_amocrm_is_recreated_and_relinked(rig, caplog, mode):
    exported(rig)
    rig.emulator.control.set_deleted_patch_mode(mode)
    account = first_account(rig)
    old = rig.link(Kind.CONTACT, account)
    rig.emulator.control.delete_entity("contacts", old)
    service.resync(Kind.CONTACT, [account], app=rig.app)
    services = [int(r[0]) for r in rig.sandbox.query("SELECT id FROM item WHERE account = %s", (account,))]
    payers = [int(r[0]) for r in rig.sandbox.query("SELECT id FROM profile WHERE account = %s", (account,))]
    # what pointed at the deleted contact is pushed and linked again too (sync/relink.py)
    children = len(rig.app.store.links(Kind.LEAD, services)) + len(rig.app.store.links(Kind.COMPANY, payers))
    with caplog.at_level(logging.WARNING):
        report = rig.sync()
    assert report.recreated == 1 and report.done == 1 + children and report.failed == 0
    new = rig.link(Kind.CONTACT, account)
    assert new and new != old
    assert rig.marker_counts("contacts")[marker_value(Kind.CONTACT, account)] == 1
    assert any("was deleted in amoCRM; re-creating and re-linking" in r.getMessage() for r in caplog.records)


def test_a_lead_deleted_in_amocrm_comes_back_linked_to_its_contact(rig):
    exported(rig)
    item, account = rig.sandbox.query("SELECT id, account FROM item ORDER BY id LIMIT 1")[0]
    old = rig.link(Kind.LEAD, item)
    rig.emulator.control.delete_entity("leads", old)
    service.resync(Kind.LEAD, [item], app=rig.app)
    assert rig.sync().recreated == 1
    new = rig.link(Kind.LEAD, item)
    assert new != old
    lead = rig.app.amo().get("leads", [new], with_=["contacts"])[new]
    contacts = [c["id"] for c in lead["_embedded"]["contacts"]]
    assert contacts == [rig.link(Kind.CONTACT, account)]


def test_recreate_off_fails_the_record_with_the_reason(rig):
    exported(rig)
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import save_config

    sync = rig.app.config.sync.model_dump(mode="json")
    config = rebuild(rig.app.config, {"sync": dict(sync, recreate_deleted=False)})
    save_config(config, rig.app.paths, rig.app.presets)
    rig.app.reload_rules()
    account = first_account(rig)
    rig.emulator.control.delete_entity("contacts", rig.link(Kind.CONTACT, account))
    service.resync(Kind.CONTACT, [account], app=rig.app)
    assert rig.sync().failed == 1
    (failure,) = service.failed(app=rig.app)
    assert "recreate_deleted" in failure.reason


def test_ten_edits_make_one_push_of_the_latest_state(rig):
    exported(rig)
    account = first_account(rig)
    user = rig.sandbox.query("SELECT MIN(id) FROM user WHERE account = %s", (account,))[0][0]
    for n in range(10):
        rig.sandbox.edit_user(user, realname=f"Edit Number {n}")
        rig.app.store.enqueue(Kind.CONTACT, account, "edit")
    seq = rig.request_seq()
    assert rig.sync().done == 1
    (patch,) = rig.requests_since(seq, "PATCH", "/api/v4/contacts")
    assert [item["id"] for item in patch["body"]] == [rig.link(Kind.CONTACT, account)]
    assert rig.entity("contacts", rig.link(Kind.CONTACT, account))["name"] == "Edit Number 9"


def test_an_outage_keeps_every_record_and_the_next_pass_delivers_each_once(rig):
    control = rig.emulator.control
    control.add_fault(action="status", path="^/api/v4/(contacts|companies|leads)$", method="POST", status=503)
    control.add_fault(action="status", path="^/api/v4/", method="GET", status=503)
    report = rig.sync()
    assert report.done == 0 and report.stopped == "retry_later"
    status = service.status(app=rig.app)
    assert status.queue_depth > 0 and status.failed == 0
    assert not rig.all_links(Kind.CONTACT)
    control.clear_faults()
    for _ in range(4):   # contacts, then companies and leads once their contacts exist
        rig.make_due()
        rig.sync()
    status = service.status(app=rig.app)
    assert status.queue_depth == 0 and status.failed == 0
    for kind in Kind:
        counts = rig.marker_counts(kind.amo_entity)
        assert max(counts.values()) == 1 and len(counts) == len(rig.all_links(kind))


def test_tags_follow_the_rules_and_hand_made_tags_stay(rig):
    is_vds = {"value": "service.type", "validator": "equals", "argument": "vds"}
    rig.add_rule("tags", {"entity": "lead", "tag": "vds-service", "conditions": [is_vds]})
    rig.add_rule("tags", {"entity": "contact", "tag": "from-billmanager"})
    exported(rig)
    vds = [int(r[0]) for r in rig.sandbox.query(
        "SELECT i.id FROM item i JOIN pricelist p ON p.id = i.pricelist JOIN itemtype t ON t.id = p.itemtype "
        "WHERE t.intname = 'vds' ORDER BY i.id LIMIT 1")]
    item = vds[0]
    lead_id = rig.link(Kind.LEAD, item)

    def tags(entity: str, amocrm_id: int) -> set[str]:
        return {t["name"] for t in rig.app.amo().get(entity, [amocrm_id])[amocrm_id]["_embedded"]["tags"]}

    assert "vds-service" in tags("leads", lead_id)
    account = first_account(rig)
    assert tags("contacts", rig.link(Kind.CONTACT, account)) == {"from-billmanager"}
    # a person adds a tag by hand; then the service stops being a VDS
    rig.app.amo().update("leads", [{"id": lead_id, "request_id": "hand",
                                    "tags_to_add": [{"name": "vip"}]}])
    rig.sandbox.query("UPDATE item SET pricelist = (SELECT p.id FROM pricelist p JOIN itemtype t "
                      "ON t.id = p.itemtype WHERE t.intname <> 'vds' ORDER BY p.id LIMIT 1) WHERE id = %s",
                      (item,))
    service.resync(Kind.LEAD, [item], app=rig.app)
    seq = rig.request_seq()
    assert rig.sync().done == 1
    (patch,) = rig.requests_since(seq, "PATCH", "/api/v4/leads")
    assert patch["body"][0]["tags_to_delete"] == [{"name": "vds-service"}]
    assert tags("leads", lead_id) == {"vip"}


def test_conditions_custom_fields_and_pipelines_from_a_real_config(rig):
    text_field = next(f for f in rig.app.amo().custom_fields("leads") if f["type"] == "text")
    pipelines = rig.app.amo().pipelines()
    second = pipelines[-1]
    stage = next(s for s in second["_embedded"]["statuses"] if s["type"] == 0 and s["id"] not in (142, 143))
    rig.add_rule("conditions.lead", {"value": "service.cost", "validator": "greater", "argument": "0"})
    rig.add_rule("fields", {"entity": "lead", "field_id": text_field["id"], "field_type": "text",
                            "value": "service.pricelist"})
    rig.add_rule("pipelines", {"pipeline_id": second["id"], "status_id": stage["id"]})
    exported(rig)
    free = {int(r[0]) for r in rig.sandbox.query("SELECT id FROM item WHERE cost <= 0")}
    paid = {int(r[0]) for r in rig.sandbox.query("SELECT id FROM item WHERE cost > 0")}
    links = rig.all_links(Kind.LEAD)
    assert paid and set(links) == paid and not free & set(links)
    item = min(paid)
    lead = rig.entity("leads", links[item])
    assert (lead["pipeline_id"], lead["status_id"]) == (second["id"], stage["id"])
    pricelist = rig.sandbox.query("SELECT p.name FROM item i JOIN pricelist p ON p.id = i.pricelist "
                                  "WHERE i.id = %s", (item,))[0][0]
    values = {cf["field_id"]: cf["values"][0]["value"] for cf in lead["custom_fields_values"]}
    assert values[text_field["id"]] == pricelist


def test_a_recheck_links_a_lead_created_before_its_client_was_wanted(rig):
    item, account = rig.sandbox.query("SELECT id, account FROM item ORDER BY id LIMIT 1")[0]
    rule = rig.add_rule("conditions.contact", {"value": "client.id", "validator": "not_equals",
                                               "argument": str(account)})
    exported(rig)
    lead_id = rig.link(Kind.LEAD, item)
    assert rig.link(Kind.CONTACT, account) is None
    assert not rig.app.amo().get("leads", [lead_id], with_=["contacts"])[lead_id]["_embedded"].get("contacts")
    rig.delete_rule("conditions.contact", rule)
    service.resync(Kind.CONTACT, [account], app=rig.app)
    rig.sync()
    contact_id = rig.link(Kind.CONTACT, account)
    # the reconciler's re-check: same fields, but the stored fingerprint says "sent without a contact"
    rig.app.store.enqueue(Kind.LEAD, item, "reconcile")
    seq = rig.request_seq()
    assert rig.sync().done == 1
    assert rig.requests_since(seq, "POST", "/api/v4/leads/link")
    lead = rig.app.amo().get("leads", [lead_id], with_=["contacts"])[lead_id]
    assert [c["id"] for c in lead["_embedded"]["contacts"]] == [contact_id]
    # an unchanged re-check sends nothing at all
    rig.app.store.enqueue(Kind.LEAD, item, "reconcile")
    seq = rig.request_seq()
    report = rig.sync()
    assert (report.done, report.unchanged) == (0, 1) and not rig.requests_since(seq)
