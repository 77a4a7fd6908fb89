"""The export request: recorded by the asking side, answered only once everything is queued."""

from __future__ import annotations

from typing import Iterator

import pytest

from billmgr_amocrm.db import connect
from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.exportrequest import answered, export_requested, request_export, run_requested_export
from billmgr_amocrm.store.migrations import migrate
from billmgr_amocrm.store.store import MySqlStore
from tests.fakes import FakeBilling, client, payer, service


@pytest.fixture
def store(fresh_db: DbSettings) -> Iterator[MySqlStore]:
    conn = connect(fresh_db)
    migrate(conn)
    try:
        yield MySqlStore(conn)
    finally:
        conn.close()


def billing() -> FakeBilling:
    return FakeBilling(clients_={1: client(1), 2: client(2)}, payers_={5: payer(5, 1)},
                       services_={7: service(7, 1)})


def test_nothing_is_queued_unless_asked_and_the_answer_clears_the_request(store: MySqlStore) -> None:
    assert not export_requested(store)
    assert run_requested_export(store, billing()) is None
    assert store.queue_stats().depth == 0

    request_export(store)
    assert export_requested(store)
    counts = run_requested_export(store, billing())
    assert counts is not None and counts.queued == {Kind.CONTACT: 2, Kind.COMPANY: 1, Kind.LEAD: 1}
    assert not export_requested(store) and store.queue_stats().depth == 4
    assert run_requested_export(store, billing()) is None    # answered once


class _LeadsUnreadable(FakeBilling):
    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        if kind is Kind.LEAD:
            raise ConnectionError("MySQL went away")
        return super().iter_ids(kind, after_id, batch)


def test_a_request_whose_queueing_fails_half_way_stays_standing(store: MySqlStore) -> None:
    request_export(store)
    broken = _LeadsUnreadable(clients_={1: client(1)}, services_={7: service(7, 1)})
    with pytest.raises(ConnectionError):
        run_requested_export(store, broken)
    assert export_requested(store)             # the next worker resumes the export
    answered(store)
    assert not export_requested(store)
