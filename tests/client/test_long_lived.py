"""The long-lived token at the client: checked as pasted, tried on the account, never refreshed.

Over the real emulator (HTTP) and the host's real token files; the clock is the test's.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any, Dict

import pytest

from billmgr_amocrm.amocrm.authorization import check_form
from billmgr_amocrm.amocrm.longlived import account_answer, check_long_lived_form
from billmgr_amocrm.amocrm.tokens import TokenStore
from billmgr_amocrm.amocrm.transport import Reply
from billmgr_amocrm.amocrm.urls import parse_account_url
from billmgr_amocrm.bootstrap import authorize_long_lived, token_status
from billmgr_amocrm.errors import AuthorizationRefused, ConfigError, Reauthorize
from billmgr_amocrm.paths import HostPaths
from tests.amocrm_emulator import EmulatorHandle

from .conftest import FakeClock, Setup

DAY = 86400
# a secret the client registers for redaction: long and unlike any word a later test's message has
KEY = "Kx9-integration-key-0f-the-test"


def jwt(claims: Dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl"


def test_the_token_is_taken_as_pasted_and_refused_with_what_is_wrong() -> None:
    now = time.time()
    token = jwt({"exp": int(now) + 30 * DAY, "aud": "abc"})
    pasted = f"  Bearer {token[:30]}\r\n{token[30:]}\n"
    assert check_long_lived_form("https://hoster.amocrm.ru", pasted, now=now).token == token
    for bad, code in (("", "long_lived_empty"), ("not-a-jwt-at-all.0123", "long_lived_not_token"),
                      ("def50200" + "ab" * 200, "long_lived_is_code"),        # the code, in the wrong field
                      (jwt({"aud": "abc"}), "long_lived_not_token"),           # no end date
                      (jwt({"exp": "soon"}), "long_lived_not_token"),
                      (jwt({"exp": int(now) - 1}), "long_lived_ended")):
        with pytest.raises(ConfigError) as caught:
            check_long_lived_form("https://hoster.amocrm.ru", bad, now=now)
        assert caught.value.code == code
    with pytest.raises(ConfigError) as caught:
        check_long_lived_form("https://example.com", token, now=now)
    assert caught.value.code == "url_foreign_host"
    assert token not in repr(check_long_lived_form("https://hoster.amocrm.ru", token, now=now))


def test_a_long_lived_token_pasted_as_the_code_is_caught_before_amocrm_is_asked() -> None:
    token = jwt({"exp": int(time.time()) + 30 * DAY})
    with pytest.raises(ConfigError) as caught:
        check_form("https://hoster.amocrm.ru", "client", KEY, "https://b.example/billmgr", token)
    assert caught.value.code == "code_is_token" and "Long-lived token field" in str(caught.value)
    assert check_form("https://hoster.amocrm.ru", "client", KEY, "https://b.example/billmgr",
                      "def50200" + "ab" * 200).code.startswith("def50200")


def _reply(status: int, body: Any) -> Reply:
    return Reply(method="GET", path="/api/v4/account", status=status, headers={},
                 body=json.dumps(body).encode())


def test_the_account_answer_decides_whose_token_it_is() -> None:
    account = parse_account_url("https://hoster.amocrm.ru")
    assert account_answer(_reply(200, {"id": 7, "subdomain": "hoster"}), account)["id"] == 7
    with pytest.raises(ConfigError) as caught:
        account_answer(_reply(200, {"id": 7, "subdomain": "trial"}), account)
    assert caught.value.code == "long_lived_other_account" and "trial.amocrm.ru" in str(caught.value)
    with pytest.raises(AuthorizationRefused) as refused:
        account_answer(_reply(401, {"title": "Unauthorized", "status": 401}), account)
    assert refused.value.code == "auth_long_lived_bad"
    with pytest.raises(ConfigError, match="does not look like"):
        account_answer(_reply(404, {}), account)
    with pytest.raises(ConfigError, match="does not look like"):
        account_answer(_reply(200, ["not", "an", "account"]), account)


@pytest.fixture
def long_lived(setup: Setup) -> Setup:
    """``setup`` (authorized by a code), then switched to a 60-day long-lived token."""
    token = setup.emu.control.long_lived_token(60 * DAY)
    meta = authorize_long_lived(setup.paths, setup.emu.url, token, clock=setup.clock)
    assert meta.kind == "long_lived" and meta.client_id == setup.emu.integration["client_id"]
    return setup


def test_a_long_lived_token_is_used_to_its_end_and_never_refreshed(long_lived: Setup,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    setup = long_lived
    grants = len(setup.emu.control.token_grants("refresh_token"))
    client = setup.client()
    setup.jump(40 * DAY)                      # a code's pair would have been refreshed 40 times
    assert client.account()["id"]
    assert client.keep_alive(max_age_days=7) is False
    assert len(setup.emu.control.token_grants("refresh_token")) == grants
    assert setup.paths.refresh_token.read_text() == "\n"
    assert token_status(setup.paths, clock=setup.clock).state == "ok"
    setup.clock.advance(7 * DAY)              # 13 days left
    status = token_status(setup.paths, clock=setup.clock)
    assert status.state == "ending" and status.kind == "long_lived" and status.refresh_expires_at is None
    with caplog.at_level(logging.WARNING, logger="billmgr_amocrm.amocrm"):
        assert client.keep_alive(max_age_days=7) is False      # the worker's daily duty says so
    assert "the long-lived amoCRM token ends on" in caplog.text and "(in 13 days)" in caplog.text


def test_a_revoked_long_lived_token_asks_for_a_new_one_and_sends_nothing_more(long_lived: Setup) -> None:
    setup = long_lived
    stored = TokenStore(setup.paths).read()
    assert stored is not None
    setup.emu.control.revoke_token(stored.access)
    with pytest.raises(AuthorizationRefused) as caught:
        setup.client().account()
    assert caught.value.code == "auth_long_lived_refused" and "make a new one in amoCRM" in str(caught.value)
    assert stored.access not in str(caught.value)
    before = len(setup.api_requests())
    with pytest.raises(Reauthorize):
        setup.client().account()                 # another process: refused locally, nothing sent
    assert len(setup.api_requests()) == before
    assert token_status(setup.paths, clock=setup.clock).state == "needs_reauth"
    assert TokenStore(setup.paths).read() == stored        # kept, as any refused token is

    fresh = setup.emu.control.long_lived_token(60 * DAY)
    authorize_long_lived(setup.paths, setup.emu.url, fresh, clock=setup.clock)
    assert setup.client().account()["id"]


def test_a_peer_that_stored_a_new_token_meanwhile_is_followed_not_refused(long_lived: Setup) -> None:
    """A 401 for the token this process read, while the admin already stored a new one: the new
    one is used, and no re-authorize state is recorded."""
    setup = long_lived
    client = setup.client()
    old = client.credentials.access_token()
    setup.emu.control.revoke_token(old)
    authorize_long_lived(setup.paths, setup.emu.url, setup.emu.control.long_lived_token(60 * DAY),
                         clock=setup.clock)
    assert client.credentials.after_401(old) != old
    assert token_status(setup.paths, clock=setup.clock).state == "ok"


def test_an_unreachable_account_is_a_config_error_and_stores_nothing(
        emu: EmulatorHandle, mgr5_root: Any, loopback: None) -> None:
    paths = HostPaths(mgr5_root)
    token = emu.control.long_lived_token(30 * DAY)
    with pytest.raises(ConfigError, match="cannot reach"):
        authorize_long_lived(paths, "http://127.0.0.1:9", token, timeout=(0.5, 0.5), clock=FakeClock())
    assert TokenStore(paths).read() is None
    assert token_status(paths).state == "not_authorized"
