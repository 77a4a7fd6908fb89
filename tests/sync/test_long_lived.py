"""A private integration's long-lived token instead of the one-time code, as an admin uses it.

The token is pasted (here: piped into ``amocrm authorize --long-lived-token-file -``), tried on
the account, stored; from then on nothing single-use exists: months without events need no
refresh, and the only end is the token's own date or its revocation in amoCRM, which stops
the sync with what to do while the queue waits for a new token.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.amocrm.tokens import TokenStore
from billmgr_amocrm.bootstrap import build, build_amo_client, token_status
from billmgr_amocrm.bootstrap.amocrm import authorize_long_lived
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.paths import HostPaths

from .conftest import Rig

REPO = Path(__file__).resolve().parents[2]
DAY = 86400


def amocrm_cli(root: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, MGR5_ROOT=str(root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1")
    return subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm"), *args], cwd=REPO, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def token_requests(emulator: Any) -> list:
    return [r for r in emulator.control.requests() if r["path"] == "/oauth2/access_token"]


def expiring_always(app: Any) -> None:
    """Every client the engine builds holds any token for expiring (a pair would refresh at every
    request, as after months without events): a long-lived token is used as it is."""
    def factory(size: int) -> Any:
        return build_amo_client(app.paths, chunk_size=size, refresh_margin=10 * 365 * DAY)

    app.amo_factory = factory
    app._clients.clear()


@pytest.fixture
def long_lived(emulator: Any, mgr5_root: Path) -> Iterator[Any]:
    """A module authorized with a one-year long-lived token through the command line."""
    token = emulator.control.long_lived_token(365 * DAY)
    done = amocrm_cli(mgr5_root, "authorize", "--url", emulator.url, "--long-lived-token-file", "-",
                      stdin=f"Bearer {token[:40]}\n{token[40:]}\n")     # as pasted: prefix, a line break
    assert done.returncode == 0, done.stderr
    assert "with a long-lived token valid until" in done.stdout and "initial export requested" in done.stdout
    assert token not in done.stdout + done.stderr
    app = build()
    try:
        yield app
    finally:
        app.close()


def test_a_long_lived_token_exports_everything_and_no_token_is_ever_requested(
        long_lived: Any, emulator: Any, mgr5_root: Path) -> None:
    report = service.sync_now(app=long_lived)
    assert report.stopped is None
    counts = long_lived.store.link_counts()
    assert counts[Kind.CONTACT] and counts[Kind.LEAD]
    assert not token_requests(emulator)                  # no code exchanged, no refresh

    paths = HostPaths(mgr5_root)
    stored = TokenStore(paths).read()
    assert stored is not None and stored.meta.kind == "long_lived" and stored.refresh == ""
    for secret in (paths.access_token, paths.refresh_token):
        assert secret.stat().st_mode & 0o777 == 0o600
    status = amocrm_cli(mgr5_root, "status")
    assert status.returncode == 0, status.stderr
    assert "token: ok (long-lived" in status.stdout and "refresh until" not in status.stdout
    check = amocrm_cli(mgr5_root, "check")
    assert "expires" in check.stdout and "(long-lived: make a new one before it ends)" in check.stdout, check


def test_months_without_events_need_no_refresh_and_the_end_is_announced_two_weeks_ahead(
        emulator: Any, mgr5_root: Path) -> None:
    token = emulator.control.long_lived_token(120 * DAY)
    service.authorize_long_lived(emulator.url, token)
    paths = HostPaths(mgr5_root)
    assert token_status(paths).state == "ok"
    emulator.control.advance(100 * DAY)      # amoCRM's clock: 100 days on, the token still valid there
    app = build()
    try:
        expiring_always(app)                  # whatever the module's clock, no refresh is wanted
        assert service.sync_now(app=app).stopped is None
        assert app.store.link_counts()[Kind.CONTACT]
        assert not app.amo().keep_alive(max_age_days=7)   # the daily keep-alive has nothing to rotate
    finally:
        app.close()
    assert not token_requests(emulator)
    later = token_status(paths, clock=lambda: time.time() + 110 * DAY)
    assert later.state == "ending" and "make a new one" in later.reason
    assert service.authorized()                    # still working meanwhile
    ended = token_status(paths, clock=lambda: time.time() + 121 * DAY)
    assert ended.state == "needs_reauth" and "ended on" in ended.reason


def test_a_revoked_token_stops_the_sync_keeps_the_queue_and_a_new_token_sends_it_once(
        long_lived: Any, emulator: Any, mgr5_root: Path) -> None:
    assert service.sync_now(app=long_lived).stopped is None
    contacts = long_lived.store.link_counts()[Kind.CONTACT]
    stored = TokenStore(HostPaths(mgr5_root)).read()
    assert stored is not None
    assert emulator.control.revoke_token(stored.access)       # the owner revoked it in amoCRM
    service.resync("contact", list(long_lived.store.links(Kind.CONTACT, list(range(1, 100000)))),
                   app=long_lived)
    queued = service.status(app=long_lived).queue_depth
    assert queued

    report = service.sync_now(app=long_lived)
    assert report.stopped
    status = service.status(app=long_lived)
    assert status.token_state == "needs_reauth" and "long-lived token" in status.token_reason
    assert "make a new one in amoCRM" in status.token_reason
    assert status.queue_depth == queued
    assert not token_requests(emulator)              # nothing to refresh: no token request tried

    fresh = emulator.control.long_lived_token(365 * DAY)
    service.authorize_long_lived(emulator.url, fresh, app=long_lived)
    assert service.token_status().state == "ok"
    while service.sync_now(app=long_lived).handled:
        pass
    assert service.status(app=long_lived).queue_depth == 0
    assert long_lived.store.link_counts()[Kind.CONTACT] == contacts
    rig = Rig(mgr5_root, None, emulator, long_lived)
    assert set(rig.marker_counts("contacts").values()) == {1}      # resent, never created twice


def test_a_token_that_cannot_be_used_leaves_the_stored_pair_working(rig: Rig) -> None:
    paths = HostPaths(rig.root)
    before = TokenStore(paths).read()
    revoked = rig.emulator.control.long_lived_token(30 * DAY)
    rig.emulator.control.revoke_token(revoked)
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) - DAY}).encode()).decode()
    ended = f"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.{payload.rstrip('=')}.c2ln"
    for token, says in ((revoked, "refused the long-lived token (401)"), ("not-a-token", "not an amoCRM"),
                        (ended, "the long-lived token ended on")):
        with pytest.raises(service.ServiceError) as caught:
            service.authorize_long_lived(rig.emulator.url, token)
        assert says in caught.value.message("en"), caught.value.message("en")
        assert "{" not in caught.value.message("ru")
        assert TokenStore(paths).read() == before
    assert service.sync_now(app=rig.app).stopped is None          # the code's pair still serves
    assert service.token_status().state == "ok"


def test_switching_from_the_code_to_a_long_lived_token_and_back_keeps_every_binding(
        rig: Rig, mgr5_root: Path) -> None:
    rig.sync()
    linked = rig.all_links(Kind.CONTACT)
    token = rig.emulator.control.long_lived_token(365 * DAY)
    result = service.authorize_long_lived(rig.emulator.url, token, app=rig.app)
    assert not result.export_requested                  # the same account: nothing to export again
    expiring_always(rig.app)                  # a pair would be refreshed before every request
    assert rig.app.amo().account()["id"]
    service.resync("contact", list(linked), app=rig.app)
    while service.sync_now(app=rig.app).handled:
        pass
    assert rig.all_links(Kind.CONTACT) == linked
    assert set(rig.marker_counts("contacts").values()) == {1}
    grants = [r for r in token_requests(rig.emulator) if r["status"] == 200]
    assert len(grants) == 1                              # the first code only; no refresh since

    back = service.authorize(rig.emulator.url, rig.emulator.integration["client_id"],
                             rig.emulator.integration["client_secret"],
                             rig.emulator.integration["redirect_uri"], rig.emulator.control.auth_code())
    assert not back.export_requested
    stored = TokenStore(HostPaths(mgr5_root)).read()
    assert stored is not None and stored.meta.kind == "oauth" and stored.refresh


def test_a_token_of_another_account_is_refused_while_bound_before_it_is_tried(
        rig: Rig, amocrm_emulator_factory: Any) -> None:
    rig.sync()
    other = amocrm_emulator_factory()
    token = other.control.long_lived_token(365 * DAY)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize_long_lived(other.url, token)
    assert caught.value.code == "another_account"
    assert not other.control.requests()


def test_the_probe_goes_through_the_host_rate_limit(emulator: Any, mgr5_root: Path) -> None:
    """The token is tried with the host's limiter (a busy worker's slots count), and stored only then."""
    token = emulator.control.long_lived_token(2 * DAY)
    meta = authorize_long_lived(HostPaths(mgr5_root), emulator.url, token, rate=1.0)
    assert meta.kind == "long_lived" and meta.expires_at > time.time() + DAY
    (request,) = emulator.control.requests()
    assert request["path"] == "/api/v4/account" and request["status"] == 200


def test_a_broken_settings_file_stops_it_before_the_token_is_tried_and_speaks_of_no_code(
        emulator: Any, mgr5_root: Path) -> None:
    (mgr5_root / "etc/amocrm/amocrm.conf").write_text("{ not json", encoding="utf-8")
    token = emulator.control.long_lived_token(365 * DAY)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize_long_lived(emulator.url, token)
    english, russian = caught.value.message("en"), caught.value.message("ru")
    assert english.startswith("Nothing was authorized: a settings file does not load"), english
    assert "code" not in english and "код" not in russian
    assert not emulator.control.requests()
    assert TokenStore(HostPaths(mgr5_root)).read() is None
