"""Panel events -> queue rows, and the drain into the real queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store import spool
from billmgr_amocrm.store.resolve import enqueue_event, resolve_event, spool_handler
from billmgr_amocrm.store.store import MySqlStore

from .conftest import FakeClock, claim


class Billing:
    """The few BillingReader lookups resolution uses, over a tiny fixed world.

    account 10 (login client@example.com) has users 100, 101 and payers 1000 < 1001;
    account 20 (login bob) has no payer. The login "shared" belongs to users of both
    clients, so it names neither; the login "4242" is an old panel's numeric login of 20.
    """

    def account_of_user(self, user_id: int) -> int | None:
        return {100: 10, 101: 10, 200: 20}.get(user_id)

    def account_by_login(self, login: str) -> int | None:
        return {"client@example.com": 10, "bob": 20, "4242": 20}.get(login)

    def account_by_login_or_email(self, value: str) -> int | None:
        return {"client@example.com": 10, "bob": 20}.get(value)

    def newest_payer_of(self, account_id: int) -> int | None:
        return {10: 1001}.get(account_id)


CASES = [
    ({"func": "register", "email": "client@example.com"}, [(Kind.CONTACT, 10, "edit")]),
    ({"func": "register", "doc_id": "10", "email": "x@y.z"}, [(Kind.CONTACT, 10, "edit")]),
    ({"func": "account.edit", "elid": "10"}, [(Kind.CONTACT, 10, "edit")]),
    ({"func": "account.edit", "elid": "10, 20"}, [(Kind.CONTACT, 10, "edit"), (Kind.CONTACT, 20, "edit")]),
    ({"func": "account.edit", "su": "bob"}, [(Kind.CONTACT, 20, "edit")]),
    ({"func": "user.edit", "elid": "101"}, [(Kind.CONTACT, 10, "edit")]),
    ({"func": "user.edit", "plid": "20"}, [(Kind.CONTACT, 20, "edit")]),
    ({"func": "user.edit", "user": "bob", "level": 16}, [(Kind.CONTACT, 20, "edit")]),
    ({"func": "profile.edit", "elid": "1000", "profiletype": "2"}, [(Kind.COMPANY, 1000, "edit")]),
    ({"func": "profile.edit", "plid": "10"}, [(Kind.COMPANY, 1001, "edit")]),
    ({"func": "profile.edit", "su": "client@example.com"}, [(Kind.COMPANY, 1001, "edit")]),
    ({"func": "profile.edit", "user": "client@example.com", "level": 16}, [(Kind.COMPANY, 1001, "edit")]),
    # AUTH_USER as BILLmanager sends it: the acting client's user id.
    ({"func": "profile.edit", "user": "100", "level": 16}, [(Kind.COMPANY, 1001, "edit")]),
    ({"func": "user.edit", "user": "200", "level": 16}, [(Kind.CONTACT, 20, "edit")]),
    ({"func": "user.edit", "user": "4242", "level": 16}, [(Kind.CONTACT, 20, "edit")]),  # an old login
    # a payer deleted (one, or several on a group delete): the worker finds each gone
    ({"func": "profile.delete", "elid": "1000"}, [(Kind.COMPANY, 1000, "edit")]),
    ({"func": "profile.delete", "elid": "1000, 1001"},
     [(Kind.COMPANY, 1000, "edit"), (Kind.COMPANY, 1001, "edit")]),
    ({"func": "service.postopen", "elid": "55"}, [(Kind.LEAD, 55, "open")]),
    ({"func": "service.postprolong", "elid": "55"}, [(Kind.LEAD, 55, "prolong")]),
    ({"func": "service.postsuspend", "elid": "55"}, [(Kind.LEAD, 55, "suspend")]),
    ({"func": "service.postresume", "elid": "55, 56"},
     [(Kind.LEAD, 55, "resume"), (Kind.LEAD, 56, "resume")]),
    ({"func": "service.postclose", "elid": "55"}, [(Kind.LEAD, 55, "close")]),
    ({"func": "service.postreopen", "elid": "55"}, [(Kind.LEAD, 55, "resume")]),
    ({"func": "service.postsetparam", "elid": "55"}, [(Kind.LEAD, 55, "edit")]),
    # Unresolvable: logged, nothing queued, no crash.
    ({"func": "profile.edit", "plid": "20"}, []),
    ({"func": "profile.edit", "user": "client@example.com", "level": 30}, []),   # an admin is not the client
    ({"func": "profile.edit", "user": "100", "level": 29}, []),                  # 29 is an administrator
    ({"func": "profile.edit", "user": "root", "level": 30}, []),
    ({"func": "profile.edit", "user": "root", "level": 16}, []),                 # root is never a client
    ({"func": "user.edit", "user": "shared", "level": 16}, []),                  # a login two clients share
    ({"func": "user.edit", "user": "999", "level": 16}, []),                     # no such user
    ({"func": "user.edit", "elid": "999"}, []),
    ({"func": "service.postopen", "elid": "abc"}, []),
    ({"func": "profile.delete", "plid": "10"}, []),        # a deletion names what it deleted, or nothing
    ({"func": "account.edit", "elid": "-3"}, []),
    ({"func": "payment.add", "elid": "1"}, []),
]


CASE_IDS = [f"{c[0]['func']}-{i}" for i, c in enumerate(CASES)]


@pytest.mark.parametrize(("event", "expected"), CASES, ids=CASE_IDS)
def test_resolve_event(event: dict, expected: list) -> None:
    assert resolve_event({"v": 1, **event}, Billing()) == expected


def test_unresolvable_events_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    resolve_event({"v": 1, "func": "profile.edit", "plid": "20"}, Billing())
    assert "reconciler will pick it up" in caplog.text


def test_drain_moves_spooled_events_into_the_queue(
        tmp_path: Path, store: MySqlStore, clock: FakeClock) -> None:
    for item in ({"func": "user.edit", "elid": "100"}, {"func": "account.edit", "elid": "10"},
                 {"func": "service.postopen", "elid": "55"}, {"func": "profile.edit", "plid": "20"},
                 {"func": "service.postprolong", "elid": "55"}):
        spool.record_event(tmp_path, {"v": 1, "ts": 1.0, **item})
    assert spool.drain(tmp_path, spool_handler(store, Billing())) == 5
    assert spool.pending_files(tmp_path) == []
    (contact,) = claim(store, Kind.CONTACT, 10, clock.now)
    assert (contact.billmgr_id, contact.version) == (10, 2)
    (lead,) = claim(store, Kind.LEAD, 10, clock.now)
    assert (lead.billmgr_id, lead.reason, lead.version) == (55, "open", 2)


def test_an_event_is_queued_whole_or_not_at_all(store: MySqlStore) -> None:
    class BrokenStore(MySqlStore):
        def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
            if billmgr_id == 20:
                raise ConnectionError("lost")
            super().enqueue(kind, billmgr_id, reason)

    broken = BrokenStore(store._conn)
    with pytest.raises(ConnectionError):
        enqueue_event({"v": 1, "func": "account.edit", "elid": "10, 20"}, broken, Billing())
    assert store.queue_stats().depth == 0
