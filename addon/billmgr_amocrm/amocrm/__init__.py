"""The amoCRM REST v4 client: OAuth, shared rate limit, stop states, batch writes.

Public surface (``bootstrap`` builds every part from the host's paths and passes it in)::

    AmoClient(transport, credentials, state, chunk_size=50)
    authorize(base_url, client_id, client_secret, redirect_uri, code, *, exchange, tokens, state,
              secret_file) -> TokenInfo
    token_status(tokens, state) -> TokenStatus
    ClientSecret(path).read() / .write(secret) / .saved()
    parse_account_url(url) -> AccountUrl

Errors: :mod:`billmgr_amocrm.errors` (shared with the sync core). Loopback opt-in for tests
and the demo: see :mod:`.urls` (``BILLMGR_AMOCRM_ALLOW_LOOPBACK=1``).
"""

from __future__ import annotations

from .api import AmoClient
from .authorization import TokenInfo, TokenStatus, authorize, token_status
from .credentials import ClientSecret
from .urls import AccountUrl, parse_account_url

__all__ = [
    "AccountUrl", "AmoClient", "ClientSecret", "TokenInfo", "TokenStatus", "authorize",
    "parse_account_url", "token_status",
]
