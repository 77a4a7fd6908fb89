"""The amoCRM account the module's bindings belong to, recorded in the database.

Every id the module keeps is an id in one amoCRM account: the link tables, the create
intents, the payment notes and renewal tasks, the marker and url field ids in amocrm.conf.
Sent to another account they update nothing (or, by bad luck, somebody else's entity), and
everything they no longer reach is created there again beside what the first account holds.
A module connected to a trial account and then to the real one, or a second host on the same
database authorized on its own, would do exactly that. So the account is recorded where the
bindings live, in the database (the ``amocrm:account`` cursor), and checked on both sides:

* an authorization for another account is refused before its code is spent while the
  module has bindings (``service.authorize``); with none, the module moves to the new account,
  forgets the old account's field ids and export progress, and exports everything there;
* a client for amoCRM is built only from tokens of the recorded account (``App.amo``, and
  again at every pass: ``App.engine``), so an engine on any host that shares the database
  writes to that account or not at all.

An account is named by its subdomain and its platform: ``amocrm.ru`` accounts are one
platform, ``amocrm.com`` and ``kommo.com`` (the same platform renamed) another, and the same
subdomain on the two platforms is two different accounts. The emulator (loopback) is named by
its address.
"""

from __future__ import annotations

from typing import Optional

from .amocrm.urls import AccountUrl, parse_account_url
from .exportrequest import Cursors

CURSOR = "amocrm:account"
RU_DOMAIN = "amocrm.ru"
COM_DOMAIN = "kommo.com"   # amocrm.com is the same platform under its former name


def account_key(account: AccountUrl) -> str:
    """The account's name as recorded: ``subdomain.amocrm.ru`` or ``subdomain.kommo.com``;
    the emulator's base URL (its subdomain says nothing)."""
    if account.subdomain == "emulator" and account.base_url.startswith("http://"):
        return account.base_url
    platform = RU_DOMAIN if account.base_domain == RU_DOMAIN else COM_DOMAIN
    return f"{account.subdomain}.{platform}"


def key_of_url(url: str) -> str:
    """:func:`account_key` of a URL as stored in token.json (checked when it was written)."""
    return account_key(parse_account_url(url, allow_loopback=url.startswith("http://")))


def bound_account(store: Cursors) -> Optional[str]:
    """The account the bindings belong to; None until the module is first authorized."""
    return store.get_cursor(CURSOR) or None


def bind_account(store: Cursors, key: str) -> None:
    store.set_cursor(CURSOR, key)
