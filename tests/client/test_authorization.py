"""Authorization, refresh and re-authorization over real HTTP against the emulator."""

from __future__ import annotations

import json
import stat
from http.server import BaseHTTPRequestHandler
from typing import Iterator

import pytest
import requests

from billmgr_amocrm.amocrm.tokens import TokenStore, fingerprint
from billmgr_amocrm.bootstrap import client_secret, token_status
from billmgr_amocrm.errors import AuthorizationRefused, ConfigError, Reauthorize, RetryLater
from billmgr_amocrm.paths import HostPaths
from tests.amocrm_emulator import EmulatorHandle

from .conftest import FakeClock, Setup, authorize, serving


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(path.stat().st_mode)


def test_authorize_stores_private_tokens_and_the_account_answers(setup: Setup) -> None:
    p = setup.paths
    for path in (p.access_token, p.refresh_token, p.token_meta, p.client_secret):
        assert _mode(path) == 0o600, path
    meta = json.loads(p.token_meta.read_text())
    assert meta["base_url"] == setup.emu.url and meta["api_domain"] == "api-b.amocrm.ru"
    assert meta["expires_at"] == pytest.approx(setup.clock.now + 86400, abs=5)
    assert "access_token" not in meta and "refresh_token" not in meta
    assert client_secret(p).read() == setup.emu.integration["client_secret"]
    assert setup.client().account()["id"] == 30591685
    assert token_status(p, clock=setup.clock).state == "ok"


@pytest.fixture
def paths(mgr5_root, loopback) -> HostPaths:  # type: ignore[no-untyped-def]
    return HostPaths(mgr5_root)


def test_wrong_secret_or_redirect_is_a_bad_client(emu: EmulatorHandle, paths: HostPaths) -> None:
    i = emu.integration
    with pytest.raises(AuthorizationRefused, match="integration ID") as bad_secret:
        authorize(emu.url, i["client_id"], "x" * 64, i["redirect_uri"], emu.control.auth_code(), paths)
    assert bad_secret.value.reason == "bad_client" and bad_secret.value.status == 401
    with pytest.raises(AuthorizationRefused) as bad_redirect:
        authorize(emu.url, i["client_id"], i["client_secret"], "https://other.example/cb",
                  emu.control.auth_code(), paths)
    assert bad_redirect.value.reason == "bad_client"
    assert not paths.access_token.exists() and not paths.client_secret.exists()


def test_used_code_asks_for_a_fresh_one(emu: EmulatorHandle, paths: HostPaths) -> None:
    """A code spent elsewhere (its pair is not on this host) is refused with what to do."""
    i = emu.integration
    spent = requests.post(emu.url + "/oauth2/access_token", timeout=5, json={
        "client_id": i["client_id"], "client_secret": i["client_secret"], "grant_type": "authorization_code",
        "code": i["auth_code"], "redirect_uri": i["redirect_uri"]})
    assert spent.status_code == 200
    with pytest.raises(AuthorizationRefused, match="fresh code") as used:
        authorize(emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"], paths)
    assert used.value.reason == "bad_code" and used.value.status == 400
    code = emu.control.auth_code()
    emu.control.advance(21 * 60)
    with pytest.raises(AuthorizationRefused, match="expired"):
        authorize(emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], code, paths)


@pytest.fixture
def not_amocrm() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><title>Not Found</title></html>")

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url


def test_unreachable_host_and_foreign_site_are_config_errors(paths: HostPaths, not_amocrm: str) -> None:
    with pytest.raises(ConfigError, match="cannot reach"):
        authorize("http://127.0.0.1:9", "id", "secret-123", "https://b.example/cb", "code-123", paths,
                  timeout=(0.5, 0.5))
    with pytest.raises(ConfigError, match="does not look like an amoCRM account"):
        authorize(not_amocrm, "id", "secret-123", "https://b.example/cb", "code-123", paths)
    with pytest.raises(ConfigError, match="not an amoCRM account"):
        authorize("https://amocrm.example.com", "id", "secret-123", "https://b.example/cb", "code-123", paths)


def test_refresh_ahead_of_expiry_after_401_and_by_keep_alive(setup: Setup) -> None:
    client = setup.client()
    first_refresh = setup.paths.refresh_token.read_text()
    setup.jump(86400 - 200)                     # 200 s left < 300 s margin: refresh ahead
    client.account()
    assert len(setup.emu.control.token_grants("refresh_token")) == 1
    second_refresh = setup.paths.refresh_token.read_text()
    assert second_refresh != first_refresh
    setup.emu.control.advance(2 * 86400)         # server-side expiry only: amoCRM answers 401
    client.account()
    grants = setup.emu.control.token_grants("refresh_token")
    assert len(grants) == 2 and grants[-1]["status"] == 200
    assert client.keep_alive(max_age_days=7) is False
    setup.clock.advance(8 * 86400)               # idle for 8 days: keep-alive rotates the pair
    setup.emu.control.advance(8 * 86400)
    assert client.keep_alive(max_age_days=7) is True
    uses = setup.emu.control.refresh_token_uses()
    assert uses and set(uses.values()) <= {0, 1}
    assert sum(uses.values()) == 3


def test_revoked_refresh_token_stops_and_asks_for_reauthorization(setup: Setup) -> None:
    i = setup.emu.integration
    stolen = setup.paths.refresh_token.read_text().strip()
    spent = requests.post(setup.emu.url + "/oauth2/access_token", timeout=5, json={
        "client_id": i["client_id"], "client_secret": i["client_secret"], "grant_type": "refresh_token",
        "refresh_token": stolen, "redirect_uri": i["redirect_uri"]})
    assert spent.status_code == 200            # someone else spent our refresh token
    client = setup.client()
    setup.jump(86400)
    with pytest.raises(Reauthorize, match="authorize"):
        client.account()
    assert json.loads(setup.paths.client_state.read_text())["reauth"]
    before = len(setup.api_requests())
    with pytest.raises(Reauthorize):
        setup.client().account()                 # another process: refused locally, nothing sent
    assert len(setup.api_requests()) == before
    assert setup.paths.refresh_token.read_text().strip() == stolen   # never deleted
    assert token_status(setup.paths, clock=setup.clock).state == "needs_reauth"
    authorize(setup.emu.url, i["client_id"], i["client_secret"], i["redirect_uri"],
              setup.emu.control.auth_code(), setup.paths, clock=setup.clock)
    assert setup.client().account()["id"]
    assert token_status(setup.paths, clock=setup.clock).state == "ok"


def test_token_status_without_network(paths: HostPaths) -> None:
    assert token_status(paths).state == "not_authorized"
    assert isinstance(FakeClock()(), float)


def test_a_refreshed_pair_no_longer_answers_for_its_code(setup: Setup) -> None:
    """The pair a code gave is recognised when the same code is given again (the set-up
    finishes without amoCRM); once refreshed it is not that code's pair, and the code goes to
    amoCRM, which refuses it as spent."""
    i = setup.emu.integration
    form = (setup.emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"], setup.paths)
    first = TokenStore(setup.paths).read()
    assert first is not None and first.meta.code_fingerprint == fingerprint(i["auth_code"])
    assert authorize(*form, clock=setup.clock) == first.meta          # recognised, nothing sent
    setup.jump(86400 + 60)
    assert setup.client().account()["id"]                            # refreshed on the way
    refreshed = TokenStore(setup.paths).read()
    assert refreshed is not None and refreshed.refresh != first.refresh
    assert refreshed.meta.code_fingerprint == ""
    with pytest.raises(AuthorizationRefused) as caught:
        authorize(*form, clock=setup.clock)
    assert caught.value.reason == "bad_code"
    assert [g["status"] for g in setup.emu.control.token_grants()] == [200, 400]


def test_an_exchange_process_that_dies_without_a_pair_says_to_save_again(
        emu: EmulatorHandle, paths: HostPaths, loopback: None) -> None:
    from billmgr_amocrm.amocrm import authorize as amocrm_authorize
    from billmgr_amocrm.amocrm.circuit import ClientState
    from billmgr_amocrm.amocrm.detached import DetachedExchange

    i = emu.integration
    dead = DetachedExchange(paths, rate=7.0, margin=0.025, timeout=(1.0, 1.0), python="/bin/false")
    with pytest.raises(RetryLater) as caught:
        amocrm_authorize(emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"],
                         exchange=dead, tokens=TokenStore(paths), state=ClientState(paths.client_state),
                         secret_file=client_secret(paths))
    assert caught.value.code == "code_exchange_failed" and "exit 1" in str(caught.value)
    assert "same code" in str(caught.value)
    assert not paths.access_token.exists() and not paths.client_secret.exists()
    assert emu.control.state()["auth_codes"][i["auth_code"]]["used"] is False


def test_a_reauthorization_stopped_before_it_cleared_the_state_finishes_with_the_same_code(
        setup: Setup) -> None:
    """The refresh token was revoked (re-authorize state), the admin gave a new code, and the
    exchange stored its pair, but the caller was stopped before it cleared the state: the same
    code finishes. A re-authorize state recorded after the pair was issued is that pair's
    refusal: then the code goes to amoCRM."""
    from billmgr_amocrm.amocrm.authorization import check_form
    from billmgr_amocrm.amocrm.circuit import ClientState
    from billmgr_amocrm.amocrm.detached import DetachedExchange

    i = setup.emu.integration
    state = ClientState(setup.paths.client_state, clock=setup.clock)
    state.record_reauth("refresh token revoked", "auth_revoked")
    setup.clock.advance(5)
    code = setup.emu.control.auth_code()
    form = (setup.emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], code, setup.paths)
    store = TokenStore(setup.paths)
    with store.lock() as lock_fd:             # the exchange alone: its caller "stopped" after it
        DetachedExchange(setup.paths, rate=7.0, margin=0.025, timeout=(5.0, 5.0))(
            check_form(*form[:5]), lock_fd=lock_fd, requested_at=setup.clock())
    assert state.read().get("reauth")
    authorize(*form, clock=setup.clock)
    assert not state.read().get("reauth") and token_status(setup.paths, clock=setup.clock).state == "ok"
    assert [g["status"] for g in setup.emu.control.token_grants()] == [200, 200]   # setup's and this one

    setup.clock.advance(5)
    state.record_reauth("refresh token revoked", "auth_revoked")   # this pair refused since
    with pytest.raises(AuthorizationRefused) as caught:
        authorize(*form, clock=setup.clock)
    assert caught.value.reason == "bad_code"
    assert [g["status"] for g in setup.emu.control.token_grants()] == [200, 200, 400]
