"""Authorize the module (one-time code -> tokens) and report token state without network.

:func:`authorize` is what the panel's settings form and the CLI both call (through
``service.authorize``); :func:`token_status` feeds the status screen. Both get the
host's token files, shared state and secret file from ``bootstrap``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from ..errors import ConfigError
from ..logsetup import register_secret
from .circuit import ClientState
from .credentials import DEFAULT_REFRESH_MARGIN, ClientSecret
from .models import TokenMeta
from .oauth import exchange_code
from .tokens import TokenStore
from .transport import Transport
from .urls import AccountUrl, parse_account_url

TokenInfo = TokenMeta
REFRESH_LIFETIME = 90 * 86400.0   # amoCRM refresh tokens die after 3 months unused


def authorize(base_url: str, client_id: str, client_secret: str, redirect_uri: str, code: str, *,
              connect: Callable[[str], Transport], tokens: TokenStore, state: ClientState,
              secret_file: ClientSecret, clock: Callable[[], float] = time.time) -> TokenInfo:
    """Exchange a one-time code, store secret + tokens (0600, atomic), clear re-authorize/stop states.

    ``connect(base_url)`` gives a transport to the account once its URL is checked.
    Raises ConfigError (bad URL or input, unreachable host, not an amoCRM account),
    AuthorizationRefused (reason bad_client or bad_code), RetryLater, Stop.
    """
    form = check_form(base_url, client_id, client_secret, redirect_uri, code)
    transport = connect(form.account.base_url)
    try:
        with tokens.lock():
            pair = exchange_code(transport, account=form.account, client_id=form.client_id,
                                 client_secret=form.client_secret, redirect_uri=form.redirect_uri,
                                 code=form.code, clock=clock)
            secret_file.write(form.client_secret)
            tokens.write(pair)
    finally:
        transport.session.close()
    state.clear_reauth()
    state.clear_stop()
    return pair.meta


@dataclass(frozen=True)
class AuthForm:
    """What the settings form (or the CLI) gave, checked and trimmed."""

    account: AccountUrl
    client_id: str
    client_secret: str
    redirect_uri: str
    code: str


def check_form(base_url: str, client_id: str, client_secret: str, redirect_uri: str, code: str) -> AuthForm:
    """The authorization's input, checked without the network; ConfigError says what to fix."""
    for secret in (client_secret, code):
        register_secret((secret or "").strip())
    account = parse_account_url(base_url)
    client_id, client_secret, redirect_uri, code = (v.strip() for v in
                                                    (client_id, client_secret, redirect_uri, code))
    _require(client_id, "client_id")
    _require(client_secret, "secret")
    _require(code, "code")
    if not redirect_uri.startswith(("https://", "http://")):
        raise ConfigError(code="redirect_not_url")
    return AuthForm(account, client_id, client_secret, redirect_uri, code)


def _require(value: str, what: str) -> None:
    """``what``: client_id | secret | code (the error codes ``<what>_empty``, ``<what>_spaces``)."""
    if not value:
        raise ConfigError(code=f"{what}_empty")
    if any(c.isspace() for c in value):
        raise ConfigError(code=f"{what}_spaces")


@dataclass(frozen=True)
class TokenStatus:
    """What the status screen shows. ``state``: not_authorized | ok | expiring | expired |
    needs_reauth | blocked | unpaid."""

    state: str
    base_url: str = ""
    subdomain: str = ""
    access_expires_at: Optional[float] = None
    refresh_issued_at: Optional[float] = None
    refresh_expires_at: Optional[float] = None
    reason: str = ""


def token_status(tokens: TokenStore, state: ClientState, *, clock: Callable[[], float] = time.time,
                 margin: float = DEFAULT_REFRESH_MARGIN) -> TokenStatus:
    """Token and stop state from the files only (no network, no secret read)."""
    meta = tokens.read_meta()
    shared = state.read()
    if meta is None:
        return TokenStatus("not_authorized", reason="enter the one-time code in the module settings")
    common: Dict[str, Any] = {
        "base_url": meta.base_url, "subdomain": meta.subdomain, "access_expires_at": meta.expires_at,
        "refresh_issued_at": meta.refresh_issued_at,
        "refresh_expires_at": meta.refresh_issued_at + REFRESH_LIFETIME}
    if shared.get("reauth"):
        return TokenStatus("needs_reauth", reason=str(shared["reauth"].get("reason", "")), **common)
    stop = shared.get("stop")
    if stop:
        return TokenStatus(str(stop.get("reason", "blocked")), reason=str(stop.get("detail", "")), **common)
    now = clock()
    if now >= meta.refresh_issued_at + REFRESH_LIFETIME:
        return TokenStatus("needs_reauth", reason="the refresh token is older than 3 months", **common)
    if now >= meta.expires_at:
        return TokenStatus("expired", reason="refreshed automatically on the next request", **common)
    if meta.expires_at - now < margin:
        return TokenStatus("expiring", **common)
    return TokenStatus("ok", **common)
