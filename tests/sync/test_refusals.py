"""A 400 fails the affected records after one attempt with amoCRM's words, on every kind of call.

Writes (creates, updates) are covered in test_engine / test_scenarios; here: parent links,
the settle lookup by marker, and the marker fields' set-up. Against the fakes, and against
MariaDB and the emulator.
"""

from __future__ import annotations

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.engine import Engine
from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context, payer

from .test_scenarios import exported


def test_a_refused_link_fails_its_record_at_once_and_the_others_are_done():
    billing = FakeBilling()
    billing.clients_.update({1: client(1), 2: client(2)})
    billing.payers_.update({5: payer(5, account=1), 6: payer(6, account=2)})
    amo, store = FakeAmo(), FakeStore()
    engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0)
    for account in (1, 2):
        store.enqueue(Kind.CONTACT, account, "edit")
    engine.run_pass()
    refused_contact = store.link_rows[Kind.CONTACT][1]
    amo.reject_link = lambda entity, link: ("amoCRM refused to link: NotSupportedChoice at 0.to_entity_id"
                                            if link["to_entity_id"] == refused_contact else None)
    store.enqueue_many(Kind.COMPANY, [5, 6], "edit")
    report = engine.run_pass()
    # company 6 is done; contact 1, the parent of the refused link, is pushed to find out if it is gone
    assert report.failed == 1 and report.done == 2
    assert [c for c in amo.calls if c[0] == "PATCH"] == [("PATCH", "contacts", 1)]
    (failed,) = store.failed()
    assert (failed.billmgr_id, failed.attempts) == (5, 1)
    assert failed.last_error == "amoCRM refused to link: NotSupportedChoice at 0.to_entity_id"
    assert [c for c in amo.calls if c[1] == "companies/link"] == [("POST", "companies/link", 2)]
    assert not [r for r in store.queue.values() if r.state == "pending"]


def test_a_link_refused_by_amocrm_fails_the_lead_after_one_attempt_with_amocrms_words(rig):
    exported(rig)
    leads = rig.all_links(Kind.LEAD)
    item = next(i for i in sorted(leads)
                if rig.app.amo().get("leads", [leads[i]])[leads[i]]["_embedded"]["companies"])
    # amoCRM refuses one of the lead's links (a 400 that names no item: it is split out)
    rig.emulator.control.add_fault(action="status", status=400, method="POST", path="^/api/v4/leads/link$",
                                   count=2)
    service.resync(Kind.LEAD, [item], app=rig.app)
    seq = rig.request_seq()
    report = rig.sync()
    assert report.failed == 1, report.failures
    (failure,) = service.failed(app=rig.app)
    assert (failure.kind, failure.billmgr_id, failure.attempts) == ("lead", item, 1)
    assert failure.reason.startswith(f"amoCRM refused to link leads {leads[item]} to contacts ")
    assert "Injected fault" in failure.reason
    links = rig.requests_since(seq, "POST", "/api/v4/leads/link")
    assert [len(r["body"]) for r in links] == [2, 1, 1]   # split: the contact link refused, the company made
    # nothing is sent for it again until an admin retries it (its contact was pushed once, unchanged)
    rig.make_due()
    seq = rig.request_seq()
    rig.sync()
    assert not rig.requests_since(seq, "POST", "/api/v4/leads/link")


def test_a_refused_marker_lookup_fails_the_unconfirmed_creates_at_once(rig):
    exported(rig)
    control = rig.emulator.control
    fresh = rig.sandbox.add_client(name="Lost Answer", email="lost@example.com").account_id
    # the create is applied but its answer is lost; then amoCRM refuses the lookup (400)
    control.add_fault(action="drop", method="POST", path="^/api/v4/contacts$", count=1)
    service.resync(Kind.CONTACT, [fresh], app=rig.app)
    assert rig.sync().retried == 1
    control.add_fault(action="status", status=400, method="GET", path="^/api/v4/contacts$")
    rig.make_due()
    seq = rig.request_seq()
    report = rig.sync()
    assert report.failed == 1
    (failure,) = service.failed(app=rig.app)
    assert (failure.billmgr_id, failure.attempts) == (fresh, 2)   # the lost answer, then the refusal
    assert "looking up the BILLmanager ID marker failed" in failure.reason
    assert "Injected fault" in failure.reason
    assert len(rig.requests_since(seq, "GET", "/api/v4/contacts")) == 1
    # the intent stays open: once amoCRM answers again, a retry adopts the entity, no duplicate
    control.clear_faults()
    assert service.retry_failed(app=rig.app) == 1
    assert rig.sync().adopted == 1
    assert rig.marker_counts("contacts")[f"billmgr:contact:{fresh}"] == 1


def test_refused_marker_fields_fail_the_waiting_records_once_and_are_not_asked_again(
        sandbox_db, amocrm_emulator_factory, mgr5_root, monkeypatch):
    import pytest

    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.service import ServiceError

    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory()
    control = emulator.control
    control.add_fault(action="status", status=400, method="POST", path="custom_fields$")
    integ = emulator.integration
    with pytest.raises(ServiceError, match="Injected fault"):
        service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                          integ["auth_code"])
    app = build()
    try:
        account = int(sandbox_db.query("SELECT MIN(id) FROM account")[0][0])
        app.store.enqueue(Kind.CONTACT, account, "edit")
        report = service.sync_now(app=app)
        assert report.stopped == "refused" and report.failed == 1
        (failure,) = service.failed(app=app)
        assert failure.attempts == 1 and "BILLmanager ID" in failure.reason
        assert "Injected fault" in failure.reason
        seq = int(control.requests()[-1]["seq"])
        assert service.sync_now(app=app).handled == 0   # nothing waits: nothing is asked again
        assert not [r for r in control.requests(since=seq) if r["path"].endswith("custom_fields")]
        control.clear_faults()
        assert service.retry_failed(app=app) == 1
        assert service.sync_now(app=app).done == 1
        assert len(app.marker_fields()) == 3
    finally:
        app.close()
