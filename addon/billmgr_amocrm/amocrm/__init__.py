"""The amoCRM REST v4 client: OAuth, shared rate limit, stop states, batch writes.

Public surface::

    AmoClient(base_url=None, *, paths=None, rate=6.0, timeout=(5, 30), chunk_size=50, ...)
    AmoClient.from_host(paths=None, **kw)
    authorize(base_url, client_id, client_secret, redirect_uri, code, paths=None) -> TokenInfo
    token_status(paths=None) -> TokenStatus
    read_client_secret(paths=None) / write_client_secret(secret, paths=None)
    parse_account_url(url) -> AccountUrl

Errors: :mod:`billmgr_amocrm.errors` (shared with the sync core). Loopback opt-in for tests
and the demo: see :mod:`.urls` (``BILLMGR_AMOCRM_ALLOW_LOOPBACK=1``).
"""

from __future__ import annotations

from .api import AmoClient
from .authorization import TokenInfo, TokenStatus, authorize, token_status
from .credentials import read_client_secret, write_client_secret
from .urls import AccountUrl, parse_account_url

__all__ = [
    "AccountUrl", "AmoClient", "TokenInfo", "TokenStatus", "authorize",
    "parse_account_url", "read_client_secret", "token_status", "write_client_secret",
]
