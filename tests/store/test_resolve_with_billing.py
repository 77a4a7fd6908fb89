"""Event resolution against the real BILLmanager adapter over a sandbox database.

The unit tests in test_resolve.py use a stand-in reader; these prove the same
rules hold with ``BillingDb`` reading the sandbox tables, for every hooked event.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from billmgr_amocrm.billing import BillingDb
from billmgr_amocrm.db import connect
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.resolve import resolve_event


@pytest.fixture
def billing(sandbox_db) -> Iterator[BillingDb]:  # type: ignore[no-untyped-def]
    reader = BillingDb(lambda: connect(sandbox_db.settings, autocommit=True))
    yield reader
    reader.close()


def test_register_without_elid_finds_the_new_client_by_email(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    new = sandbox_db.add_client(name="Иван Регистрация", email="register.me@example.org")
    event = {"func": "register", "email": "register.me@example.org", "sok": "ok"}
    assert resolve_event(event, billing) == [(Kind.CONTACT, new.account_id, "edit")]


def test_user_edit_resolves_to_the_users_client(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    new = sandbox_db.add_client(name="Client With Users")
    second_user = sandbox_db.add_user(new.account_id, realname="Second", email="second@example.org")
    assert resolve_event({"func": "user.edit", "elid": str(second_user)}, billing) == [
        (Kind.CONTACT, new.account_id, "edit")]


def test_payer_create_resolves_to_the_newest_payer_of_the_client(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    new = sandbox_db.add_client(name="Payer Owner")
    sandbox_db.add_payer(new.account_id, name='ООО "Старая"')
    newest = sandbox_db.add_payer(new.account_id, name='ООО "Новая"')
    event = {"func": "profile.edit", "plid": str(new.account_id)}
    assert resolve_event(event, billing) == [(Kind.COMPANY, newest, "edit")]


def test_service_events_resolve_to_leads_with_their_reason(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    new = sandbox_db.add_client(name="Service Owner")
    item = sandbox_db.open_service(new.account_id)
    assert resolve_event({"func": "service.postopen", "elid": str(item)}, billing) == [
        (Kind.LEAD, item, "open")]
    assert resolve_event({"func": "service.postprolong", "elid": str(item)}, billing) == [
        (Kind.LEAD, item, "prolong")]


def test_an_event_about_nothing_known_resolves_to_nothing(billing) -> None:  # type: ignore[no-untyped-def]
    assert resolve_event({"func": "register", "email": "nobody@nowhere.invalid"}, billing) == []
    assert resolve_event({"func": "user.edit", "elid": "999999"}, billing) == []


def test_auth_user_is_the_acting_users_id_as_billmanager_sends_it(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    new = sandbox_db.add_client(name="Self Service", login="self.service")
    second_user = sandbox_db.add_user(new.account_id, realname="Бухгалтер")
    payer = sandbox_db.add_payer(new.account_id, name='ООО "Своя"')
    for user in (str(new.user_id), str(second_user)):
        event = {"func": "profile.edit", "user": user, "level": 16, "sok": "ok"}
        assert resolve_event(event, billing) == [(Kind.COMPANY, payer, "edit")]
    # an administrator's or root's save names no client: nothing to guess from AUTH_USER
    assert resolve_event({"func": "profile.edit", "user": str(new.user_id), "level": 29}, billing) == []
    assert resolve_event({"func": "profile.edit", "user": "root", "level": 30}, billing) == []


def test_an_old_panels_login_counts_only_when_one_client_has_it(sandbox_db, billing) -> None:  # type: ignore[no-untyped-def]
    first = sandbox_db.add_client(name="First", login="same.login")
    payer = sandbox_db.add_payer(first.account_id, name='ООО "Первая"')
    event = {"func": "profile.edit", "user": "same.login", "level": 16}
    assert resolve_event(event, billing) == [(Kind.COMPANY, payer, "edit")]
    # Logins are assumed unique panel-wide ([U]); where they are not, the login names no one.
    with sandbox_db.conn.cursor() as cur:
        cur.execute("ALTER TABLE user DROP INDEX user_name")
    second = sandbox_db.add_client(name="Second", login="same.login")
    sandbox_db.add_payer(second.account_id, name='ООО "Вторая"')
    assert billing.account_by_login("same.login") is None
    assert resolve_event(event, billing) == []
