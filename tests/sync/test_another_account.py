"""The module's bindings belong to one amoCRM account, and nothing writes them to another.

An admin who connected a trial account and then types the real one, or a second host on the
same database authorized on its own: the link tables, the marker field ids and the create
intents are ids in the first account. The account is recorded in the database; authorizing
another one is refused while there are bindings (before the code is spent), and a host whose
tokens are for another account builds no client, so its engine writes nowhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.amocrm.tokens import TokenSet, TokenStore
from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.boundaccount import CURSOR
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.errors import Reauthorize
from billmgr_amocrm.paths import HostPaths
from tests.fixtures.mgr5 import make_root

from .conftest import Rig


def form_of(emulator: Any) -> Dict[str, str]:
    integ = emulator.integration
    return {"url": emulator.url, "client_id": integ["client_id"], "client_secret": integ["client_secret"],
            "redirect_uri": integ["redirect_uri"], "code": integ["auth_code"]}


def fields_made(emulator: Any) -> list:
    """The custom fields the module created in this account (its marker and url fields)."""
    return [r["path"] for r in emulator.control.requests()
            if r["method"] == "POST" and r["path"].endswith("/custom_fields") and r["status"] == 200]


def test_another_account_is_refused_while_the_module_has_bindings_and_the_code_stays_unused(
        rig: Rig, amocrm_emulator_factory: Any) -> None:
    rig.sync()
    linked = rig.all_links(Kind.CONTACT)
    assert linked
    before = TokenStore(HostPaths(rig.root)).read()
    other = amocrm_emulator_factory()
    form = form_of(other)
    with pytest.raises(service.ServiceError) as caught:
        service.authorize(**form)
    message = caught.value.message("en")
    assert f"bound to amoCRM account {rig.emulator.url}" in message, message
    assert f"{len(linked)} contact" in message and "amocrm-purge" in message
    assert "The authorization code was not used." in message
    russian = caught.value.message("ru")
    assert "Код авторизации не использован" in russian and "{" not in russian
    assert russian.count(rig.emulator.url) == 3 and message.count(rig.emulator.url) == 3
    assert other.control.state()["auth_codes"][form["code"]]["used"] is False
    assert not other.control.token_grants()
    assert TokenStore(HostPaths(rig.root)).read() == before      # still the first account's pair
    assert rig.all_links(Kind.CONTACT) == linked


def test_with_no_bindings_the_module_moves_to_the_other_account_and_makes_its_fields_there(
        sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    trial, real = amocrm_emulator_factory(), amocrm_emulator_factory()
    service.authorize(**form_of(trial))                 # a trial account, nothing exported yet
    assert fields_made(trial) and not fields_made(real)
    result = service.authorize(**form_of(real))
    assert result.export_requested
    assert len(fields_made(real)) == len(fields_made(trial))   # made anew in the account it now serves
    app = build()
    try:
        assert app.store.get_cursor(CURSOR) == real.url
        assert app.amo().account()["id"]
    finally:
        app.close()


def test_a_host_whose_tokens_are_for_another_account_than_the_bindings_writes_nowhere(
        rig: Rig, amocrm_emulator_factory: Any, tmp_path: Path) -> None:
    """Host 2 on the same database holds tokens for another account (authorized before the
    account was recorded, or by hand): its engine builds no client and sends nothing."""
    rig.sync()
    other = amocrm_emulator_factory()
    root2 = make_root(tmp_path / "host2")
    for name in ("etc/billmgr.conf.d/db.conf", "etc/amocrm/amocrm.conf"):
        shutil.copy(rig.root / name, root2 / name)
    # host 2's token files, for the other account: what an authorization there would have left
    paths2 = HostPaths(root2)
    issued = other.control.issue_tokens(other.integration["client_id"])
    ours = TokenStore(HostPaths(rig.root)).read()
    assert ours is not None
    TokenStore(paths2).write(TokenSet(access=issued["access_token"], refresh=issued["refresh_token"],
                                      meta=ours.meta.model_copy(update={"base_url": other.url})))
    shutil.copy(rig.root / "etc/amocrm/client_secret", root2 / "etc/amocrm/client_secret")
    app2 = build(paths2)
    try:
        with pytest.raises(Reauthorize) as caught:
            app2.amo()
        assert caught.value.code == "tokens_not_bound_account"
        assert f"belong to {rig.emulator.url}" in str(caught.value)
        assert f"authorize this host for {rig.emulator.url}" in str(caught.value)
    finally:
        app2.close()
    assert not [r for r in other.control.requests() if r["path"].startswith("/api/")]


def test_a_running_worker_stops_writing_once_the_module_serves_another_account(rig: Rig) -> None:
    """A daemon's client is built once; the account is checked again at every pass, so a
    module moved to another account from another host stops this host's engine."""
    assert rig.app.engine() is not None          # builds and caches this host's client
    rig.app.store.set_cursor(CURSOR, "another.amocrm.ru")
    with pytest.raises(Reauthorize) as caught:
        rig.app.engine()
    assert caught.value.code == "tokens_not_bound_account"
    assert "belong to another.amocrm.ru" in str(caught.value)


def test_a_move_that_fails_after_the_exchange_still_exports_everything_once_finished(
        sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    trial, real = amocrm_emulator_factory(), amocrm_emulator_factory()
    service.authorize(**form_of(trial))
    app = build()
    try:
        app.store.export_begin(Kind.CONTACT)       # the trial account had its export
    finally:
        app.close()
    real.control.add_fault("status", path="custom_fields$", method="POST", status=400)
    with pytest.raises(service.ServiceError, match="save the settings again with the same code"):
        service.authorize(**form_of(real))
    real.control.clear_faults()
    result = service.authorize(**form_of(real))
    assert result.export_requested                 # the move is not forgotten by the failure
    assert len(fields_made(real)) == len(fields_made(trial))
