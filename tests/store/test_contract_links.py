"""The Store contract, the rest: links, create intents, sync state and fingerprints, units
of work, export progress and cursors. MySqlStore and FakeStore must both pass every test.
"""

from __future__ import annotations

import inspect
from contextlib import suppress
from datetime import timedelta, timezone
from typing import Any

import pytest

from billmgr_amocrm.domain import Kind, ServiceEvent
from billmgr_amocrm.ports import Store
from billmgr_amocrm.store.store import MySqlStore
from tests.fake_store import FakeStore

from .conftest import FakeClock, claim

MOSCOW = timezone(timedelta(hours=3))


@pytest.mark.parametrize("implementation", [MySqlStore, FakeStore])
def test_both_stores_have_every_method_of_the_port_with_its_parameters(implementation: type) -> None:
    for name, declared in inspect.getmembers(Store, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert list(inspect.signature(getattr(implementation, name)).parameters) == \
            list(inspect.signature(declared).parameters), name


def test_links_upsert_read_drop_and_unbind(any_store: Any, clock: FakeClock) -> None:
    any_store.put_links(Kind.CONTACT, [(1, 1001), (2, 1002)])
    any_store.put_links(Kind.CONTACT, [(1, 5001)])             # replaced, not duplicated
    any_store.put_links(Kind.LEAD, [(1, 9001), (2, 9002)])
    assert any_store.links(Kind.CONTACT, [1, 2, 3, 1]) == {1: 5001, 2: 1002}
    assert any_store.links(Kind.LEAD, [1]) == {1: 9001}
    assert any_store.links(Kind.COMPANY, []) == {}
    any_store.record_synced_many(Kind.CONTACT, [(2, "c2")], clock.now)
    any_store.drop_link(Kind.CONTACT, 2)                        # the link goes, the sync state stays
    assert any_store.links(Kind.CONTACT, [1, 2]) == {1: 5001}
    assert any_store.fingerprints(Kind.CONTACT, [2]) == {2: "c2"}
    any_store.record_synced_many(Kind.LEAD, [(1, "abc"), (2, "def")], clock.now)
    any_store.begin_create(Kind.LEAD, [3], clock.now)
    assert any_store.delete_links(Kind.LEAD, [1, 3, 4]) == 1  # links deleted; with their state
    assert any_store.links(Kind.LEAD, [1, 2]) == {2: 9002}
    assert any_store.fingerprints(Kind.LEAD, [1, 2]) == {2: "def"}
    assert any_store.open_creates(Kind.LEAD) == {}


def test_an_unbinding_notes_the_entities_whose_marker_is_to_come_off(any_store: Any,
                                                                     clock: FakeClock) -> None:
    any_store.put_links(Kind.CONTACT, [(1, 1001), (2, 1002), (3, 1003)])
    any_store.put_links(Kind.LEAD, [(1, 9001)])
    assert not any_store.unmarks_pending()
    assert any_store.delete_links(Kind.CONTACT, [2, 1, 77]) == 2
    clock.advance(1)
    assert any_store.delete_links(Kind.LEAD, [1]) == 1
    assert any_store.unmarks_pending()
    assert sorted(any_store.unmarks(Kind.CONTACT, 10)) == [(1001, 1), (1002, 2)]
    assert len(any_store.unmarks(Kind.CONTACT, 1)) == 1
    assert any_store.unmarks(Kind.LEAD, 10) == [(9001, 1)]
    assert any_store.unmarks(Kind.COMPANY, 10) == []
    any_store.forget_unmarks(Kind.CONTACT, [1001, 1002, 5])
    assert any_store.unmarks(Kind.CONTACT, 10) == []
    any_store.forget_unmarks(Kind.LEAD, [9001])
    assert not any_store.unmarks_pending()
    # a unit of work that fails notes nothing
    with suppress(RuntimeError), any_store.transaction():
        any_store.delete_links(Kind.CONTACT, [3])
        raise RuntimeError("the caller's unit of work fails")
    assert any_store.links(Kind.CONTACT, [3]) == {3: 1003}
    assert not any_store.unmarks_pending()


def test_the_bound_ids_of_a_kind_come_in_pages_in_order(any_store: Any) -> None:
    any_store.put_links(Kind.COMPANY, [(7, 107), (3, 103), (12, 112), (5, 105)])
    any_store.put_links(Kind.LEAD, [(4, 204)])
    assert list(any_store.bound_ids(Kind.COMPANY, 0, 2)) == [[3, 5], [7, 12]]
    assert list(any_store.bound_ids(Kind.COMPANY, 5, 10)) == [[7, 12]]
    assert list(any_store.bound_ids(Kind.CONTACT)) == []


def test_one_amocrm_entity_is_linked_to_one_billmanager_entity(any_store: Any, clock: FakeClock) -> None:
    any_store.put_links(Kind.LEAD, [(1, 901), (2, 902)])
    any_store.begin_create(Kind.LEAD, [3, 4, 5], clock.now)
    # 3 claims 901 (held by 1); 5 claims 905, which 4 claims first in the same call
    assert any_store.put_links(Kind.LEAD, [(3, 901), (4, 905), (5, 905), (1, 901)]) == {3: 1, 5: 4}
    assert any_store.links(Kind.LEAD, [1, 2, 3, 4, 5]) == {1: 901, 2: 902, 4: 905}
    assert any_store.open_creates(Kind.LEAD) == {3: clock.now, 5: clock.now}   # theirs stay open
    assert any_store.linked_to(Kind.LEAD, [901, 905, 999]) == {901: 1, 905: 4}
    assert any_store.linked_to(Kind.CONTACT, [901]) == {}
    # a just-created entity whose id is taken: no link and no sync state for it
    assert any_store.link_created(Kind.LEAD, [(5, 902, "f5"), (6, 906, "f6")], clock.now) == {5: 2}
    assert any_store.links(Kind.LEAD, [5, 6]) == {6: 906}
    assert any_store.fingerprints(Kind.LEAD, [5, 6]) == {6: "f6"}
    assert any_store.open_creates(Kind.LEAD) == {3: clock.now, 5: clock.now}
    any_store.drop_link(Kind.LEAD, 2)                 # a dropped link frees its amoCRM id
    assert any_store.put_links(Kind.LEAD, [(5, 902)]) == {}
    assert any_store.linked_to(Kind.LEAD, [902]) == {902: 5}


def test_create_intents_until_linked(any_store: Any, clock: FakeClock) -> None:
    first = clock.now
    any_store.begin_create(Kind.COMPANY, [1, 2, 3, 4, 5], clock.now)
    any_store.begin_create(Kind.COMPANY, [2], clock.now + timedelta(minutes=5))  # a retry keeps its time
    assert any_store.open_creates(Kind.COMPANY) == {i: first for i in (1, 2, 3, 4, 5)}
    assert any_store.open_creates(Kind.COMPANY, [2, 9]) == {2: first}
    assert any_store.open_creates(Kind.CONTACT) == {}
    any_store.put_links(Kind.COMPANY, [(1, 100)])                          # a link ends its intent
    any_store.clear_create(Kind.COMPANY, 3)
    any_store.record_synced_many(Kind.COMPANY, [(4, "")], clock.now)        # an update: intent stays
    any_store.put_links(Kind.COMPANY, [(5, 500)], clear_intents=False)
    any_store.drop_link(Kind.COMPANY, 5)                                   # unlinked: open again
    assert any_store.open_creates(Kind.COMPANY) == {2: first, 4: first, 5: first}
    any_store.record_synced_many(Kind.COMPANY, [(4, "f"), (5, "f")], clock.now, created=True)
    assert any_store.open_creates(Kind.COMPANY) == {2: first}
    later = first + timedelta(hours=1)
    any_store.begin_create(Kind.COMPANY, [3], later.replace(tzinfo=None))   # naive times are UTC
    any_store.begin_create(Kind.COMPANY, [4], later.astimezone(MOSCOW))     # aware ones converted
    opened = any_store.open_creates(Kind.COMPANY, [3, 4])
    assert opened == {3: later, 4: later}
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in opened.values())


def test_fingerprints_only_for_synced_entities(any_store: Any, clock: FakeClock) -> None:
    any_store.begin_create(Kind.CONTACT, [1], clock.now)        # an intent alone: nothing was sent
    any_store.record_synced_many(Kind.CONTACT, [(2, "f2"), (3, "x" * 200)], clock.now)
    any_store.record_synced_many(Kind.CONTACT, [(2, "f2b")], clock.now + timedelta(seconds=2))
    any_store.record_synced_many(Kind.LEAD, [(2, "lead")], clock.now)
    assert any_store.fingerprints(Kind.CONTACT, [1, 2, 3, 4]) == {2: "f2b", 3: "x" * 128}
    assert any_store.fingerprints(Kind.LEAD, [1, 2]) == {2: "lead"}
    assert any_store.fingerprints(Kind.COMPANY, []) == {}


def test_a_failed_unit_of_work_leaves_nothing_behind(any_store: Any, clock: FakeClock) -> None:
    any_store.enqueue(Kind.CONTACT, 1, "edit")
    any_store.put_links(Kind.CONTACT, [(1, 11)])
    any_store.record_synced_many(Kind.CONTACT, [(1, "old")], clock.now)
    any_store.set_cursor("c", "old")
    with pytest.raises(RuntimeError), any_store.transaction():
        any_store.enqueue(Kind.CONTACT, 1, "open")
        any_store.enqueue(Kind.CONTACT, 2, "edit")
        any_store.put_links(Kind.CONTACT, [(1, 99), (2, 22)])
        any_store.drop_link(Kind.CONTACT, 1)
        any_store.record_synced_many(Kind.CONTACT, [(1, "new")], clock.now)
        any_store.begin_create(Kind.LEAD, [7], clock.now)
        any_store.export_begin(Kind.LEAD)
        any_store.set_cursor("c", "new")
        (item,) = claim(any_store, Kind.CONTACT, 1, clock.now)
        any_store.complete_many([item])
        raise RuntimeError("worker died mid-unit")
    (row,) = claim(any_store, Kind.CONTACT, 10, clock.now)
    assert (row.billmgr_id, row.version, row.reason) == (1, 1, "edit")
    assert any_store.links(Kind.CONTACT, [1, 2]) == {1: 11}
    assert any_store.fingerprints(Kind.CONTACT, [1]) == {1: "old"}
    assert any_store.open_creates(Kind.LEAD) == {} and any_store.export_progress(Kind.LEAD) is None
    assert any_store.get_cursor("c") == "old"


def test_nested_transactions_join_the_outer_one(any_store: Any, clock: FakeClock) -> None:
    with pytest.raises(RuntimeError), any_store.transaction():
        any_store.put_links(Kind.CONTACT, [(1, 11)])
        with any_store.transaction():
            any_store.enqueue(Kind.CONTACT, 1, "edit")
        raise RuntimeError("the outer unit fails after the inner one ended")
    assert any_store.links(Kind.CONTACT, [1]) == {} and any_store.queue_stats().depth == 0
    with any_store.transaction():
        any_store.put_links(Kind.CONTACT, [(1, 11)])
        with suppress(RuntimeError), any_store.transaction():
            any_store.enqueue(Kind.CONTACT, 1, "edit")
            raise RuntimeError("an inner failure the outer unit handles: no savepoint")
    assert any_store.links(Kind.CONTACT, [1]) == {1: 11} and any_store.queue_stats().depth == 1


def test_export_progress_resumes_an_unfinished_export_and_restarts_a_finished_one(
        any_store: Any, clock: FakeClock) -> None:
    assert any_store.export_progress(Kind.LEAD) is None
    started = any_store.export_begin(Kind.LEAD)
    assert (started.kind, started.last_id, started.enqueued, started.finished_at) == (Kind.LEAD, 0, 0, None)
    assert started.started_at == clock.now and started.started_at.utcoffset() == timedelta(0)
    any_store.export_advance(Kind.LEAD, 1000, 1000)
    clock.advance(60)
    resumed = any_store.export_begin(Kind.LEAD)       # interrupted: carries on from 1000
    assert (resumed.last_id, resumed.enqueued, resumed.started_at) == (1000, 1000, started.started_at)
    any_store.export_advance(Kind.LEAD, 1500, 400)
    any_store.export_finish(Kind.LEAD)
    done = any_store.export_progress(Kind.LEAD)
    assert (done.last_id, done.enqueued, done.finished_at) == (1500, 1400, clock.now)
    assert any_store.export_progress(Kind.CONTACT) is None
    clock.advance(60)
    again = any_store.export_begin(Kind.LEAD)         # a finished export starts over
    assert (again.last_id, again.enqueued, again.started_at, again.finished_at) == (0, 0, clock.now, None)


def test_cursors_are_named_values(any_store: Any) -> None:
    assert any_store.get_cursor("reconcile.last") is None
    any_store.set_cursor("reconcile.last", "2024-05-01T12:00:00")
    any_store.set_cursor("reconcile.last", "2024-05-01T13:00:00")
    any_store.set_cursor("export", "")
    assert any_store.get_cursor("reconcile.last") == "2024-05-01T13:00:00"
    assert any_store.get_cursor("export") == ""



def test_the_last_service_event_of_each_item(any_store: Any, clock: FakeClock) -> None:
    assert any_store.service_events([1, 2]) == {}
    any_store.record_service_events([], clock.now)
    any_store.record_service_events([(1, ServiceEvent.OPEN), (2, ServiceEvent.OPEN)], clock.now)
    any_store.record_service_events([(1, ServiceEvent.PROLONG)], clock.now + timedelta(days=30))
    assert any_store.service_events([1, 2, 3, 1]) == {1: ServiceEvent.PROLONG, 2: ServiceEvent.OPEN}
    assert any_store.service_events([]) == {}
    with suppress(RuntimeError), any_store.transaction():   # a failed unit leaves the history as it was
        any_store.record_service_events([(2, ServiceEvent.PROLONG)], clock.now)
        raise RuntimeError("rolled back")
    assert any_store.service_events([2]) == {2: ServiceEvent.OPEN}
