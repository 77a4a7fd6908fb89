"""The engine against the fakes: exactly-once protocol, failures, deletions, ordering."""

from __future__ import annotations

from datetime import date

from billmgr_amocrm.domain import Kind, ServiceEvent
from billmgr_amocrm.markers import marker_value
from billmgr_amocrm.sync.engine import Engine
from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context, payer, service


def build(n_clients: int = 0, **rules_kw):
    billing = FakeBilling()
    for i in range(1, n_clients + 1):
        billing.clients_[i] = client(i)
    amo, store = FakeAmo(), FakeStore()
    engine = Engine(amo, billing, store, FakeRules(**rules_kw), context(), jitter=lambda: 0.0, settle_after=0)
    return engine, amo, billing, store


def test_ten_edits_of_one_client_make_one_push_of_its_latest_state():
    engine, amo, billing, store = build(1)
    for _ in range(10):
        store.enqueue(Kind.CONTACT, 1, "edit")
    billing.clients_[1] = client(1, "Latest Name")
    report = engine.run_pass()
    assert report.done == 1 and not store.queue
    assert [c for c in amo.calls if c[0] == "POST"] == [("POST", "contacts", 1)]
    (stored,) = amo.entities["contacts"].values()
    assert stored["name"] == "Latest Name"


def test_a_lead_before_its_contact_syncs_the_contact_first_in_the_same_pass():
    engine, amo, billing, store = build(1)
    billing.services_[7] = service(7, account=1)
    store.enqueue(Kind.LEAD, 7, "open")
    report = engine.run_pass()
    assert not store.queue and report.deferred == 1
    contact_id = store.link_rows[Kind.CONTACT][1]
    lead = amo.entities["leads"][store.link_rows[Kind.LEAD][7]]
    assert lead["_embedded"]["contacts"] == [{"id": contact_id, "is_main": True}]


def test_a_company_is_linked_to_its_clients_contact():
    engine, amo, billing, store = build(1)
    billing.payers_[5] = payer(5, account=1)
    store.enqueue(Kind.COMPANY, 5, "edit")
    store.enqueue(Kind.CONTACT, 1, "edit")
    engine.run_pass()
    assert amo.links == [("companies", store.link_rows[Kind.COMPANY][5], "contacts",
                          store.link_rows[Kind.CONTACT][1])]
    assert not store.queue


def test_one_invalid_record_in_fifty_fails_alone_after_one_attempt_with_amocrms_reason():
    engine, amo, billing, store = build(50)
    billing.clients_[13] = client(13, "BAD")
    amo.reject = lambda entity, item: "NotSupportedChoice at name" if item.get("name") == "BAD" else None
    for i in range(1, 51):
        store.enqueue(Kind.CONTACT, i, "export")
    report = engine.run_pass()
    assert report.done == 49 and report.failed == 1
    assert len(store.link_rows[Kind.CONTACT]) == 49
    (failed,) = store.failed()
    assert failed.billmgr_id == 13 and "NotSupportedChoice" in failed.last_error and failed.attempts == 1


def test_a_lost_create_response_is_settled_by_the_marker_without_a_duplicate():
    engine, amo, billing, store = build(3)
    amo.lose_next_create_response = 1
    for i in (1, 2, 3):
        store.enqueue(Kind.CONTACT, i, "edit")
    engine.run_pass()
    store.make_due()
    engine.run_pass()
    for i in (1, 2, 3):
        assert len(amo.with_marker("contacts", marker_value(Kind.CONTACT, i))) == 1
    assert len(store.link_rows[Kind.CONTACT]) == 3 and not store.queue and not store.intents


def test_a_crash_after_the_post_leaves_an_intent_that_is_adopted_not_recreated():
    engine, amo, billing, store = build(1)
    store.enqueue(Kind.CONTACT, 1, "edit")
    engine.run_pass()
    first = store.link_rows[Kind.CONTACT].pop(1)   # as if the link commit never happened
    store.intents[(Kind.CONTACT, 1)] = min(store.synced.values())
    store.enqueue(Kind.CONTACT, 1, "edit")
    report = engine.run_pass()
    assert report.adopted == 1 and store.link_rows[Kind.CONTACT][1] == first
    assert len(amo.entities["contacts"]) == 1


def test_an_entity_deleted_in_amocrm_is_recreated_and_relinked(caplog):
    engine, amo, billing, store = build(1)
    store.enqueue(Kind.CONTACT, 1, "edit")
    engine.run_pass()
    old = store.link_rows[Kind.CONTACT][1]
    amo.deleted.add(("contacts", old))
    store.enqueue(Kind.CONTACT, 1, "edit")
    report = engine.run_pass()
    assert report.recreated == 1 and store.link_rows[Kind.CONTACT][1] != old
    assert any(r.levelname == "WARNING" and "deleted in amoCRM" in r.getMessage() for r in caplog.records)


def test_an_outage_keeps_every_row_and_burns_no_dead_letter():
    engine, amo, billing, store = build(3)
    amo.outage = True
    for i in (1, 2, 3):
        store.enqueue(Kind.CONTACT, i, "edit")
    for _ in range(12):
        report = engine.run_pass()
        store.make_due()
    assert report.stopped == "retry_later"
    assert len(store.queue) == 3 and not store.failed()
    amo.outage = False
    engine.run_pass()
    assert not store.queue and len(store.link_rows[Kind.CONTACT]) == 3


def test_conditions_skip_and_complete_the_row_and_tags_follow_the_rules():
    engine, amo, billing, store = build(
        2, conditions={Kind.CONTACT: lambda c: c.id != 2},
        tagger=lambda kind, e: ("vip",) if e.name.startswith("VIP") else (), managed=("vip",))
    billing.clients_[1] = client(1, "VIP one")
    store.enqueue(Kind.CONTACT, 1, "edit")
    store.enqueue(Kind.CONTACT, 2, "edit")
    report = engine.run_pass()
    assert report.skipped == 1 and not store.queue and 2 not in store.link_rows[Kind.CONTACT]
    contact = amo.entities["contacts"][store.link_rows[Kind.CONTACT][1]]
    assert contact["tags"] == {"vip"}
    billing.clients_[1] = client(1, "plain")
    store.enqueue(Kind.CONTACT, 1, "edit")
    engine.run_pass()
    assert contact["tags"] == set()


def test_lanes_cover_every_row_once_across_batches_and_deferrals():
    from billmgr_amocrm.sync.lanes import Lane, Lanes

    billing = FakeBilling()
    for i in range(1, 8):
        billing.clients_[i] = client(i)
    for n in range(1, 24):
        billing.services_[100 + n] = service(100 + n, account=1 + n % 7)
    amo, store = FakeAmo(), FakeStore()
    engine = Engine(amo, billing, store, FakeRules(), context(), batch_size=5, jitter=lambda: 0.0,
                    lanes=Lanes(lambda: Lane(billing, store), 4))
    for n in range(1, 24):
        store.enqueue(Kind.LEAD, 100 + n, "open")   # leads first: every batch waits for contacts
    report = engine.run_pass()
    assert report.done == 23 + 7 and report.failed == 0 and not store.queue
    posts = [c for c in amo.calls if c[:2] == ("POST", "leads")]
    assert sum(n for _, _, n in posts) == 23 and all(n <= 5 for _, _, n in posts)
    assert len(amo.entities["leads"]) == 23 and len(amo.entities["contacts"]) == 7


def test_a_stop_request_ends_the_pass_between_batches():
    engine, amo, billing, store = build(12)
    engine.batch_size = 5
    for i in range(1, 13):
        store.enqueue(Kind.CONTACT, i, "export")
    batches: list[int] = []
    engine.on_batch = lambda kind, batch: batches.append(batch.done)
    engine.should_stop = lambda: len(batches) >= 1
    report = engine.run_pass()
    assert batches == [5] and report.done == 5 and len(store.queue) == 7


class _BrokenLinks:
    """The store seen through a lane whose link commit fails (MySQL gone mid-write)."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def link_created(self, kind, rows, now):
        raise ConnectionError("MySQL went away")


def test_a_batch_whose_link_commit_fails_is_settled_by_its_marker_not_created_again():
    import pytest

    from billmgr_amocrm.sync.lanes import Lane, Lanes

    _, amo, billing, store = build(3)
    engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0,
                    lanes=Lanes(lambda: Lane(billing, _BrokenLinks(store)), 2))
    for i in (1, 2, 3):
        store.enqueue(Kind.CONTACT, i, "export")
    with pytest.raises(ConnectionError):
        engine.run_pass()
    assert len(store.intents) == 3 and not store.link_rows[Kind.CONTACT] and len(store.queue) == 3
    engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0)
    report = engine.run_pass()
    assert report.adopted == 3 and len(amo.entities["contacts"]) == 3 and not store.queue


def test_a_service_event_is_recorded_and_later_syncs_of_the_item_are_planned_with_it():
    engine, amo, billing, store = build(1)
    billing.services_[7] = service(7, account=1)
    billing.services_[8] = service(8, account=1)
    store.enqueue(Kind.LEAD, 7, "prolong")
    store.enqueue(Kind.LEAD, 8, "export")
    engine.run_pass()
    assert store.service_events([7, 8]) == {7: ServiceEvent.PROLONG}
    rules = engine.rules
    assert rules.events_asked[(Kind.LEAD, 7)] is ServiceEvent.PROLONG
    assert rules.events_asked[(Kind.LEAD, 8)] is None
    for reason in ("reconcile", "resync", "edit"):
        store.enqueue(Kind.LEAD, 7, reason)
        engine.run_pass()
        assert rules.events_asked[(Kind.LEAD, 7)] is ServiceEvent.PROLONG, reason
    store.enqueue(Kind.LEAD, 7, "open")       # a newer event replaces it
    engine.run_pass()
    assert store.service_events([7]) == {7: ServiceEvent.OPEN}


def contact_company_links(amo, store):
    """The company each /link call linked to the contact, in order."""
    companies = {v: k for k, v in store.link_rows[Kind.COMPANY].items()}
    return [companies[e] for entity, e, to, _ in amo.links if entity == "companies" and to == "contacts"]


def test_of_two_legal_payers_only_the_newest_is_the_contacts_company_whatever_the_order():
    for order in ([5, 6], [6, 5]):
        engine, amo, billing, store = build(1)
        billing.payers_[5] = payer(5, account=1)
        billing.payers_[6] = payer(6, account=1)
        store.enqueue(Kind.CONTACT, 1, "edit")
        engine.run_pass()
        for payer_id in order:                     # one at a time, in either order
            store.enqueue(Kind.COMPANY, payer_id, "edit")
            engine.run_pass()
        assert set(store.link_rows[Kind.COMPANY]) == {5, 6}
        assert contact_company_links(amo, store)[-1] == 6, order
        store.enqueue(Kind.COMPANY, 5, "edit")     # an edit of the older payer links nothing
        engine.run_pass()
        assert contact_company_links(amo, store)[-1] == 6, order


def test_a_payer_that_stops_being_a_legal_entity_is_unlinked_and_its_leads_follow():
    engine, amo, billing, store = build(1)
    billing.payers_[5] = payer(5, account=1)
    billing.payers_[6] = payer(6, account=1)
    billing.services_[7] = service(7, account=1)
    for kind, i in ((Kind.CONTACT, 1), (Kind.COMPANY, 5), (Kind.COMPANY, 6), (Kind.LEAD, 7)):
        store.enqueue(kind, i, "export")
    engine.run_pass()
    company5, company6 = store.link_rows[Kind.COMPANY][5], store.link_rows[Kind.COMPANY][6]
    contact, lead = store.link_rows[Kind.CONTACT][1], store.link_rows[Kind.LEAD][7]
    assert amo.entities["leads"][lead]["_embedded"]["companies"] == [{"id": company6}]
    billing.payers_[6] = payer(6, account=1, profiletype=1)
    store.enqueue(Kind.COMPANY, 6, "edit")
    amo.links.clear()
    report = engine.run_pass()
    assert report.failed == 0 and not store.queue
    assert sorted(amo.unlinked) == [("companies", company6, "contacts", contact),
                                    ("companies", company6, "leads", lead)]
    # the older legal payer becomes the main company: linked to the contact, and the lead follows
    assert ("companies", company5, "contacts", contact) in amo.links
    assert ("leads", lead, "companies", company5) in amo.links
    assert store.link_rows[Kind.COMPANY][6] == company6     # the binding stays (the company is reused)
    assert amo.entities["companies"][company6]["name"] == "LLC 6"   # untouched in amoCRM


def test_a_pass_adds_what_it_synced_and_what_failed_to_the_days_counts():
    engine, amo, billing, store = build(5)
    billing.clients_[3] = client(3, "BAD")
    billing.services_[7] = service(7, account=1)
    amo.reject = lambda entity, item: "NotSupportedChoice at name" if item.get("name") == "BAD" else None
    for i in range(1, 6):
        store.enqueue(Kind.CONTACT, i, "export")
    store.enqueue(Kind.LEAD, 7, "open")
    engine.run_pass()
    (counts,) = store.daily_counts(date(2000, 1, 1)).values()
    assert counts == {"contact": 4, "lead": 1, "failed": 1}


def test_a_payer_legal_again_before_its_leads_recheck_gets_its_leads_linked_back():
    """Found by the operator proof (scenario 4 at full scale): a payer goes 2 -> 1 and, before the
    recheck of its client's leads runs, back to 2. The unlink took the lead off the company in
    amoCRM, but the lead's fingerprint still named it, so every later recheck found "nothing
    changed" and the lead stayed without its company. The unlink now clears those fingerprints."""
    engine, amo, billing, store = build(1)
    billing.payers_[6] = payer(6, account=1)
    billing.services_[7] = service(7, account=1)
    for kind, i in ((Kind.CONTACT, 1), (Kind.COMPANY, 6), (Kind.LEAD, 7)):
        store.enqueue(kind, i, "export")
    engine.run_pass()
    company6, lead = store.link_rows[Kind.COMPANY][6], store.link_rows[Kind.LEAD][7]
    billing.payers_[6] = payer(6, account=1, profiletype=1)
    store.enqueue(Kind.COMPANY, 6, "edit")
    plain_unlink = amo.unlink

    def unlink_then_saved_as_legal_again(entity, links):
        answer = plain_unlink(entity, links)
        billing.payers_[6] = payer(6, account=1)           # the admin's next save, before the recheck
        return answer

    amo.unlink = unlink_then_saved_as_legal_again
    engine.run_pass()
    store.enqueue(Kind.COMPANY, 6, "edit")                 # that save's event
    engine.run_pass()
    assert ("companies", company6, "leads", lead) in amo.unlinked
    assert ("leads", lead, "companies", company6) in amo.links, "the lead was never linked back"
    assert not store.queue
