"""Authorization, refresh and re-authorization over real HTTP against the emulator."""

from __future__ import annotations

import json
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Iterator

import pytest
import requests

from billmgr_amocrm.bootstrap import client_secret, token_status
from billmgr_amocrm.errors import AuthorizationRefused, ConfigError, Reauthorize
from billmgr_amocrm.paths import HostPaths
from tests.amocrm_emulator import EmulatorHandle

from .conftest import FakeClock, Setup, authorize


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
    i = emu.integration
    authorize(emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"], paths)
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

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unreachable_host_and_foreign_site_are_config_errors(paths: HostPaths, not_amocrm: str) -> None:
    with pytest.raises(ConfigError, match="cannot reach"):
        authorize("http://127.0.0.1:9", "id", "secret-123", "https://b.example/cb", "code-123", paths,
                  timeout=(0.5, 0.5), sleep=lambda s: None)
    with pytest.raises(ConfigError, match="does not look like an amoCRM account"):
        authorize(not_amocrm, "id", "secret-123", "https://b.example/cb", "code-123", paths)
    with pytest.raises(ConfigError, match="not an amoCRM account"):
        authorize("https://amocrm.example.com", "id", "secret-123", "https://b.example/cb", "code-123", paths)


def _refresh_grants(setup: Setup) -> list:
    return [r for r in setup.api_requests()
            if r["path"] == "/oauth2/access_token" and r["body"].get("grant_type") == "refresh_token"]


def test_refresh_ahead_of_expiry_after_401_and_by_keep_alive(setup: Setup) -> None:
    client = setup.client()
    first_refresh = setup.paths.refresh_token.read_text()
    setup.jump(86400 - 200)                     # 200 s left < 300 s margin: refresh ahead
    client.account()
    assert len(_refresh_grants(setup)) == 1
    second_refresh = setup.paths.refresh_token.read_text()
    assert second_refresh != first_refresh
    setup.emu.control.advance(2 * 86400)         # server-side expiry only: amoCRM answers 401
    client.account()
    grants = _refresh_grants(setup)
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
