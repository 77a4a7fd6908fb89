"""One amoCRM entity stands for one BILLmanager entity: a link that would break that fails its
record with a clear reason, never the pass (UNIQUE(amocrm_id) in the link tables)."""

from __future__ import annotations

from datetime import timedelta

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.markers import marker_value
from billmgr_amocrm.sync.engine import Engine
from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context

from .test_scenarios import exported


def test_adopting_an_entity_linked_to_another_record_fails_that_record_only():
    billing = FakeBilling()
    billing.clients_.update({1: client(1), 2: client(2), 3: client(3)})
    amo, store = FakeAmo(), FakeStore()
    engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0)
    store.enqueue_many(Kind.CONTACT, [1, 2], "edit")
    engine.run_pass()
    second = store.link_rows[Kind.CONTACT][2]
    # client 1's link wrongly points at client 2's entity; client 2 is unlinked with an open intent
    store.link_rows[Kind.CONTACT][1] = second
    store.drop_link(Kind.CONTACT, 2)
    store.begin_create(Kind.CONTACT, [2], utcnow() - timedelta(minutes=1))
    store.enqueue_many(Kind.CONTACT, [2, 3], "edit")
    report = engine.run_pass()
    assert report.failed == 1 and report.done == 1
    (failed,) = store.failed()
    assert (failed.billmgr_id, failed.attempts) == (2, 1)
    assert failed.last_error.startswith(f"amoCRM contacts {second} is already linked to contact 1")
    assert "amocrm unlink contact 1" in failed.last_error
    assert len(amo.with_marker("contacts", marker_value(Kind.CONTACT, 2))) == 1   # nothing created again
    assert 2 in store.open_creates(Kind.CONTACT)


def test_a_marker_found_on_an_entity_linked_elsewhere_fails_with_a_clear_reason(rig):
    exported(rig)
    first, second = [int(r[0]) for r in rig.sandbox.query("SELECT id FROM account ORDER BY id LIMIT 2")]
    taken = rig.link(Kind.CONTACT, second)
    table = Kind.CONTACT.link_table
    rig.sandbox.query(f"DELETE FROM {table} WHERE billmgr_id = %s", (second,))   # noqa: S608
    rig.sandbox.query(f"UPDATE {table} SET amocrm_id = %s WHERE billmgr_id = %s", (taken, first))  # noqa: S608
    rig.app.store.begin_create(Kind.CONTACT, [second], utcnow() - timedelta(minutes=1))
    service.resync(Kind.CONTACT, [second], app=rig.app)
    report = rig.sync()
    assert report.failed == 1 and report.stopped is None
    (failure,) = service.failed(app=rig.app)
    assert failure.billmgr_id == second and failure.attempts == 1
    assert f"amoCRM contacts {taken} is already linked to contact {first}" in failure.reason
    assert rig.marker_counts("contacts")[marker_value(Kind.CONTACT, second)] == 1


def test_a_created_entity_whose_id_is_already_linked_fails_its_record_with_or_without_lanes():
    import itertools

    from billmgr_amocrm.sync.lanes import Lane, Lanes

    for lanes in (None, "lanes"):
        billing = FakeBilling()
        billing.clients_.update({1: client(1), 2: client(2)})
        amo, store = FakeAmo(), FakeStore()
        store.put_links(Kind.CONTACT, [(9, 1000)])
        amo._ids = itertools.count(999)          # amoCRM answers 999 for client 1 and 1000 for client 2
        engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0,
                        lanes=Lanes(lambda b=billing, s=store: Lane(b, s), 2) if lanes else None)
        store.enqueue_many(Kind.CONTACT, [1, 2], "edit")
        engine.run_pass()
        (failed,) = store.failed()
        assert (failed.billmgr_id, failed.attempts) == (2, 1), lanes
        assert failed.last_error.startswith("amoCRM contacts 1000 is already linked to contact 9"), lanes
        assert store.links(Kind.CONTACT, [1, 2, 9]) == {1: 999, 9: 1000}, lanes
        assert store.fingerprints(Kind.CONTACT, [2]) == {}, lanes
        assert 2 in store.open_creates(Kind.CONTACT), lanes
