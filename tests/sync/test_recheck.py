"""The reconciler repairs lost edits of linked entities (issue 14, point 4).

An edit whose event never arrived reaches amoCRM at the next full re-check: what would be
sent now is compared with the fingerprint of what was sent; only what differs is queued,
and nothing is asked of amoCRM. Against the fakes, and against MariaDB and the emulator.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind, Payer
from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.sync.reconcile import RECHECK_EVERY, reconcile
from tests.fakes import FakeAmo, FakeBilling, client, context, engine_on, payer
from tests.fakes import service as item

from .test_scenarios import exported


def test_only_the_entities_whose_payload_changed_are_queued_and_amocrm_is_not_asked():
    billing = FakeBilling()
    billing.clients_.update({1: client(1), 2: client(2)})
    billing.payers_[5] = payer(5, account=1)
    billing.services_.update({7: item(7, account=1), 8: item(8, account=2)})
    engine, amo, store, rules = engine_on(billing)
    store.enqueue_many(Kind.CONTACT, [1, 2], "edit")
    store.enqueue(Kind.COMPANY, 5, "edit")
    store.enqueue_many(Kind.LEAD, [7, 8], "open")
    engine.run_pass()
    calls = len(amo.calls)
    now = utcnow()
    assert reconcile(store, billing, rules, now, context()) == {k: 0 for k in Kind}
    # edits whose events were lost: a client's name, a service's price
    billing.clients_[2] = client(2, "Renamed")
    billing.services_[7] = item(7, account=1, cost=250)
    assert reconcile(store, billing, rules, now, context()) == {k: 0 for k in Kind}   # not due yet
    queued = reconcile(store, billing, rules, now + RECHECK_EVERY, context())
    assert queued == {Kind.CONTACT: 1, Kind.COMPANY: 0, Kind.LEAD: 1}
    assert sorted((r.kind, r.billmgr_id, r.reason) for r in store.queue.values()) == [
        (Kind.CONTACT, 2, "reconcile"), (Kind.LEAD, 7, "reconcile")]
    assert len(amo.calls) == calls
    engine.run_pass()
    assert amo.entities["contacts"][store.link_rows[Kind.CONTACT][2]]["name"] == "Renamed"
    assert amo.entities["leads"][store.link_rows[Kind.LEAD][7]]["price"] == 250
    assert reconcile(store, billing, rules, now, context(), full=True) == {k: 0 for k in Kind}
    # no mapping context (marker fields unknown): only the hourly part runs
    billing.clients_[1] = client(1, "Renamed too")
    assert reconcile(store, billing, rules, now + 2 * RECHECK_EVERY, None) == {k: 0 for k in Kind}


def test_a_lost_edit_of_a_linked_client_payer_and_service_reaches_amocrm_at_the_full_recheck(rig):
    # a tag only the "open" event gives: a re-check cannot know the event, so it is not a change
    on_open = {"value": "service.event", "validator": "equals", "argument": "open"}
    rig.add_rule("tags", {"entity": "lead", "tag": "just-opened", "conditions": [on_open]})
    exported(rig)
    box = rig.sandbox
    account = int(box.query("SELECT MIN(id) FROM account")[0][0])
    # long expired, so the hourly part (services whose dates moved) does not pick it up
    opened = box.open_service(account, itemtype="vds", opendate=date(2020, 1, 10))
    rig.app.store.enqueue(Kind.LEAD, opened, "open")
    rig.sync()
    lead = rig.link(Kind.LEAD, opened)
    tags = rig.app.amo().get("leads", [lead])[lead]["_embedded"]["tags"]
    assert "just-opened" in {t["name"] for t in tags}
    assert service.reconcile(full=True, app=rig.app) == {"contact": 0, "company": 0, "lead": 0}
    payer_id = next(p for p in sorted(rig.all_links(Kind.COMPANY)))
    item_id = min(i for i in rig.all_links(Kind.LEAD) if i != opened)
    box.edit_client(account, realname="Lost Edit Client")          # no event: the spool file was lost
    box.edit_payer(payer_id, name='ООО "Потерянная правка"')
    box.query("UPDATE item SET cost = cost + 7 WHERE id = %s", (item_id,))
    seq = rig.request_seq()
    assert service.reconcile(full=True, app=rig.app) == {"contact": 1, "company": 1, "lead": 1}
    assert not rig.requests_since(seq)                               # no amoCRM call
    report = rig.sync()
    assert report.done == 3 and report.failed == 0
    assert rig.entity("contacts", rig.link(Kind.CONTACT, account))["name"] == "Lost Edit Client"
    assert rig.entity("companies", rig.link(Kind.COMPANY, payer_id))["name"] == 'ООО "Потерянная правка"'
    price = int(box.query("SELECT cost FROM item WHERE id = %s", (item_id,))[0][0])
    assert rig.entity("leads", rig.link(Kind.LEAD, item_id))["price"] == price
    assert service.reconcile(full=True, app=rig.app) == {"contact": 0, "company": 0, "lead": 0}
    # the daily schedule lives in the database: a run a day later re-checks by itself
    from billmgr_amocrm.sync.reconcile import RECHECK_CURSOR

    rig.app.store.set_cursor(RECHECK_CURSOR, (utcnow() - RECHECK_EVERY - timedelta(minutes=1)).isoformat())
    box.edit_client(account, realname="Second Lost Edit")
    assert service.reconcile(app=rig.app)["contact"] == 1
    assert service.reconcile(app=rig.app)["contact"] == 0       # due again only tomorrow


def test_an_older_payers_company_replaced_as_the_contacts_company_is_not_resent_by_the_recheck():
    """Figure 6's two rows: a client's older legal payer's company is linked to the contact by
    an earlier batch, then the newer payer's company replaces it (amoCRM keeps one company per
    contact). What the older one was sent is still what it should be: nothing is queued."""
    billing = FakeBilling()
    billing.clients_[1] = client(1)
    billing.payers_[5] = payer(5, account=1)
    engine, amo, store, rules = engine_on(billing)
    store.enqueue(Kind.CONTACT, 1, "edit")
    store.enqueue(Kind.COMPANY, 5, "edit")
    engine.run_pass()
    billing.payers_[6] = payer(6, account=1)   # the newer payer: its company becomes the main one
    store.enqueue(Kind.COMPANY, 6, "edit")
    engine.run_pass()
    contact = store.link_rows[Kind.CONTACT][1]
    assert company_of_contact(amo, contact) == store.link_rows[Kind.COMPANY][6]
    now = utcnow()
    assert reconcile(store, billing, rules, now, context(), full=True) == {k: 0 for k in Kind}
    # an edit of the older payer is still found, and sent without linking it again
    billing.payers_[5] = Payer(id=5, account_id=1, name="LLC 5 renamed", profiletype=2)
    assert reconcile(store, billing, rules, now, context(), full=True)[Kind.COMPANY] == 1
    engine.run_pass()
    assert amo.entities["companies"][store.link_rows[Kind.COMPANY][5]]["name"] == "LLC 5 renamed"
    assert company_of_contact(amo, contact) == store.link_rows[Kind.COMPANY][6]
    assert reconcile(store, billing, rules, now, context(), full=True) == {k: 0 for k in Kind}
    # the newer payer stops being a legal entity: the older company is the main one again
    billing.payers_[6] = payer(6, account=1, profiletype=1)
    store.enqueue(Kind.COMPANY, 6, "edit")
    engine.run_pass()
    engine.run_pass()
    assert company_of_contact(amo, contact) == store.link_rows[Kind.COMPANY][5]
    assert reconcile(store, billing, rules, now, context(), full=True) == {k: 0 for k in Kind}


def company_of_contact(amo: FakeAmo, contact: int) -> int:
    """The contact's company as amoCRM keeps it: the last one linked (one per contact)."""
    linked = [c for (entity, c, to, to_id) in amo.links if entity == "companies" and to == "contacts"
              and to_id == contact]
    return linked[-1]


def test_the_hourly_run_queues_only_the_services_prolonged_without_their_event(rig):
    """BILLmanager keeps no change times: the hourly part's candidates are every live service.
    Queued, each went through the engine every hour for nothing, and the queue, ``amocrm sync``
    ("2205 sent") and the day's counts said so; only a prolongation that changes what is sent
    may be queued."""
    from billmgr_amocrm.foundation.clock import local_day

    from .test_cli import amocrm

    ends = next(f for f in rig.app.amo().custom_fields("leads") if f["name"] == "Дата окончания")
    rig.add_rule("fields", {"entity": "lead", "field_id": ends["id"], "field_type": "date",
                            "value": "service.expiredate"})
    # the suite's sandbox lives in the past; a host's live services end in the months ahead
    rig.sandbox.query("UPDATE item SET expiredate = DATE_ADD(CURDATE(), INTERVAL 1 + id %% 300 DAY) "
                      "WHERE id %% 3 = 0")
    exported(rig)
    service.reconcile(app=rig.app)          # the first run (and the one after a save) re-checks all
    live = {i for ids in rig.app.billing.services_changed_since(utcnow() - timedelta(days=1)) for i in ids}
    linked = rig.all_links(Kind.LEAD)
    assert len(live & set(linked)) >= 10    # the hourly part has candidates to compare
    assert service.reconcile(app=rig.app) == {"contact": 0, "company": 0, "lead": 0}
    # a prolongation by a path that skipped service.postprolong
    prolonged = min(live & set(linked))
    rig.sandbox.prolong_service(prolonged, months=12)
    today = local_day(utcnow())
    before = rig.app.store.daily_counts(today).get(today, {}).get("lead", 0)
    assert service.reconcile(app=rig.app) == {"contact": 0, "company": 0, "lead": 1}
    code, out, _ = amocrm("sync")
    assert code == 0 and out.startswith("sync: 1 sent, 0 skipped, 0 failed"), out
    expires = rig.sandbox.query("SELECT expiredate FROM item WHERE id = %s", (prolonged,))[0][0]
    values = rig.entity("leads", linked[prolonged])["custom_fields_values"]
    stamp = next(v["values"][0]["value"] for v in values if v["field_id"] == ends["id"])
    assert datetime.fromtimestamp(stamp).date() == expires
    # a re-check that reaches the engine unchanged is not counted as sent, anywhere
    other = max(live & set(linked))
    rig.app.store.enqueue(Kind.LEAD, other, "reconcile")
    seq = rig.request_seq()
    code, out, _ = amocrm("sync")
    assert out.startswith("sync: 0 sent") and "1 re-checked, already up to date" in out, out
    assert not rig.requests_since(seq)
    assert rig.app.store.daily_counts(today)[today]["lead"] == before + 1
