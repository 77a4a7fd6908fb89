"""End to end: panel saves -> hook -> spool -> drain -> one coalesced queue row per entity."""

from __future__ import annotations

from pathlib import Path

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.paths import host_paths
from billmgr_amocrm.store import spool
from billmgr_amocrm.store.resolve import spool_handler
from billmgr_amocrm.store.store import MySqlStore
from tests.harness import run_addon
from tests.store.conftest import FakeClock, clock, conn, shared_db, store  # noqa: F401 - fixtures

SAVED = b"<doc><ok/></doc>"


class Billing:
    def account_of_user(self, user_id: int) -> int | None:
        return 10 if user_id == 100 else None

    def account_by_login(self, login: str) -> int | None:
        return None

    def account_by_login_or_email(self, value: str) -> int | None:
        return None

    def newest_payer_of(self, account_id: int) -> int | None:
        return None


def test_saves_in_the_panel_reach_the_queue_once_per_entity(
        mgr5_root: Path, store: MySqlStore, clock: FakeClock) -> None:  # noqa: F811
    for _ in range(3):
        run_addon("amocrm_event", {"func": "user.edit", "elid": "100", "sok": "ok", "passwd": "x"}, SAVED)
    run_addon("amocrm_event", {"func": "service.postopen", "elid": "7", "sok": "ok"}, SAVED)
    run_addon("amocrm_event", {"func": "service.postprolong", "elid": "7", "sok": "ok"}, SAVED)
    assert spool.drain(host_paths().spool_dir, spool_handler(store, Billing())) == 5
    (contact,) = store.claim_after(Kind.CONTACT, 10, clock.now, None)
    (lead,) = store.claim_after(Kind.LEAD, 10, clock.now, None)
    assert (contact.billmgr_id, contact.version) == (10, 3)
    assert (lead.billmgr_id, lead.reason, lead.version) == (7, "open", 2)


def test_suspend_resume_and_close_from_the_panel_reach_the_queue_as_lead_rows(
        mgr5_root: Path, store: MySqlStore, clock: FakeClock) -> None:  # noqa: F811
    """service.postsuspend/postresume/postclose (issue 17.1): one lead row each, the newest
    lifecycle event kept (a resume after a suspend is the service's state now)."""
    run_addon("amocrm_event", {"func": "service.postsuspend", "elid": "7", "sok": "ok"}, SAVED)
    run_addon("amocrm_event", {"func": "service.postresume", "elid": "7", "sok": "ok"}, SAVED)
    run_addon("amocrm_event", {"func": "service.postclose", "elid": "8, 9", "sok": "ok"}, SAVED)
    run_addon("amocrm_event", {"func": "service.postsuspend", "elid": "10"}, SAVED)   # a form open: no sok
    assert spool.drain(host_paths().spool_dir, spool_handler(store, Billing())) == 3
    leads = store.claim_after(Kind.LEAD, 10, clock.now, None)
    assert sorted((i.billmgr_id, i.reason, i.version) for i in leads) == [
        (7, "resume", 2), (8, "close", 1), (9, "close", 1)]
