"""The account use cases the settings form calls: files only, no database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import client_secret
from billmgr_amocrm.paths import HostPaths

from .conftest import Setup


def test_before_authorization_nothing_is_saved_and_nothing_counts_as_authorized(mgr5_root: Path) -> None:
    assert not service.secret_saved()
    assert not service.authorized() and service.token_status().state == "not_authorized"
    with pytest.raises(service.NotAuthorized, match="client_secret is missing"):
        service.stored_secret()
    client_secret(HostPaths(mgr5_root)).write("s3cret-key")
    assert service.secret_saved() and service.stored_secret() == "s3cret-key"


def test_after_authorization_the_token_state_and_the_secret_come_from_the_files(setup: Setup) -> None:
    assert service.authorized()
    status = service.token_status()
    assert status.state == "ok" and status.base_url == setup.emu.url
    assert service.stored_secret() == setup.emu.integration["client_secret"]


def test_the_account_url_is_normalized_or_refused_in_the_admins_words() -> None:
    assert service.account_url(" https://Shop.amocrm.ru/ ") == "https://shop.amocrm.ru"
    with pytest.raises(service.BadInput, match="not an amoCRM account"):
        service.account_url("https://shop.example.com")
