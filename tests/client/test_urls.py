"""Account URL validation: only real amoCRM account hosts, loopback only by explicit opt-in."""

from __future__ import annotations

import pytest

from billmgr_amocrm.amocrm.urls import LOOPBACK_ENV, parse_account_url
from billmgr_amocrm.errors import ConfigError


@pytest.mark.parametrize(("url", "base", "sub", "domain"), [
    ("https://acme.amocrm.ru", "https://acme.amocrm.ru", "acme", "amocrm.ru"),
    ("https://acme.amocrm.ru/", "https://acme.amocrm.ru", "acme", "amocrm.ru"),
    ("  https://Acme-2.AMOCRM.com ", "https://acme-2.amocrm.com", "acme-2", "amocrm.com"),
    ("https://shop.kommo.com", "https://shop.kommo.com", "shop", "kommo.com"),
])
def test_account_urls_are_accepted_and_split(url: str, base: str, sub: str, domain: str) -> None:
    acct = parse_account_url(url, allow_loopback=False)
    assert (acct.base_url, acct.subdomain, acct.base_domain) == (base, sub, domain)


@pytest.mark.parametrize(("url", "why"), [
    ("", "empty"),
    ("http://acme.amocrm.ru", "https"),
    ("https://www.amocrm.ru", "not an account"),
    ("https://acme.amocrm.ru/api/v4", "without a path"),
    ("https://acme.amocrm.ru?x=1", "without a path"),
    ("https://acme.amocrm.ru:8443", "port"),
    ("https://user:pw@acme.amocrm.ru", "user name"),
    ("https://acme.amocrm.ru.evil.com", "not an amoCRM account"),
    ("https://evilamocrm.ru", "not an amoCRM account"),
    ("https://a.b.amocrm.ru", "not an amoCRM account"),
    ("http://127.0.0.1:8080", "https"),
])
def test_bad_urls_are_refused_with_a_hint(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_account_url(url, allow_loopback=False)


def test_loopback_needs_the_environment_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOPBACK_ENV, raising=False)
    with pytest.raises(ConfigError):
        parse_account_url("http://127.0.0.1:8080")
    monkeypatch.setenv(LOOPBACK_ENV, "1")
    assert parse_account_url("http://127.0.0.1:8080").base_url == "http://127.0.0.1:8080"
    assert parse_account_url("http://localhost:9").base_url == "http://localhost:9"
    assert parse_account_url("http://[::1]:9").base_url == "http://[::1]:9"
    with pytest.raises(ConfigError):  # the opt-in covers loopback only
        parse_account_url("http://10.0.0.1:8080")
