"""Authorize the module (one-time code -> tokens) and report token state without network.

:func:`authorize` is what the panel's settings form and the CLI both call (through
``service.authorize``); :func:`token_status` feeds the status screen. Both get the
host's token files, shared state and secret file from ``bootstrap``.

The code works once, and what follows the exchange (the marker fields, the first export)
can still fail: amoCRM busy, the process stopped. So the pair records which code it came
from (a fingerprint), and the same code given again finds its pair on disk instead of
being refused by amoCRM as spent: the admin saves the form again and the set-up finishes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Protocol

from ..errors import ConfigError, Reauthorize
from ..logsetup import register_secret
from .circuit import ClientState
from .credentials import DEFAULT_REFRESH_MARGIN, ClientSecret
from .longlived import RENEW_AHEAD, day_of
from .models import TokenMeta
from .oauth import exchange_code, is_jwt
from .tokens import TokenStore, fingerprint
from .transport import Transport
from .urls import AccountUrl, parse_account_url

log = logging.getLogger("billmgr_amocrm.amocrm")

TokenInfo = TokenMeta
REFRESH_LIFETIME = 90 * 86400.0   # amoCRM refresh tokens die after 3 months unused


class Exchange(Protocol):
    """Exchanges the form's code and stores the secret key and the pair (0600, atomic), with
    ``token.lock`` held through ``lock_fd``; the stored pair's metadata. In production
    :class:`.detached.DetachedExchange`: a child process that stores the pair even if the
    caller is killed while amoCRM answers."""

    def __call__(self, form: AuthForm, *, lock_fd: int, requested_at: float) -> TokenMeta: ...


def authorize(base_url: str, client_id: str, client_secret: str, redirect_uri: str, code: str, *,
              exchange: Exchange, tokens: TokenStore, state: ClientState, secret_file: ClientSecret,
              clock: Callable[[], float] = time.time) -> TokenInfo:
    """Exchange a one-time code, store secret + tokens, clear re-authorize/stop states.

    A code whose pair is already stored (:func:`exchanged_before`) is not sent again.
    Raises ConfigError (bad URL or input, unreachable host, not an amoCRM account),
    AuthorizationRefused (reason bad_client or bad_code), RetryLater, Stop.
    """
    form = check_form(base_url, client_id, client_secret, redirect_uri, code)
    with tokens.lock() as lock_fd:
        meta = exchanged_before(form, tokens, secret_file, state)
        if meta is None:
            meta = exchange(form, lock_fd=lock_fd, requested_at=clock())
        else:
            log.info("this one-time code was exchanged before and its token pair is stored: "
                     "finishing the set-up with it")
    state.clear_reauth()
    state.clear_stop()
    return meta


def exchange_and_store(transport: Transport, form: AuthForm, *, tokens: TokenStore,
                       secret_file: ClientSecret, requested_at: float) -> TokenMeta:
    """The exchange itself (in the child of :class:`.detached.DetachedExchange`): the pair is
    written as soon as amoCRM has answered, the secret key with it."""
    pair = exchange_code(transport, account=form.account, client_id=form.client_id,
                         client_secret=form.client_secret, redirect_uri=form.redirect_uri,
                         code=form.code, clock=lambda: requested_at)
    secret_file.write(form.client_secret)
    tokens.write(pair)
    return pair.meta


def exchanged_before(form: AuthForm, tokens: TokenStore, secret_file: ClientSecret,
                     state: ClientState) -> Optional[TokenMeta]:
    """The stored pair's metadata when that pair came from this very form: the same code, for
    the same account and integration, with the secret key stored then; None otherwise.

    Not once the pair was refreshed (the fingerprint goes with the first pair) or amoCRM
    refused it (a re-authorize state recorded since it was issued; one from before is what
    this code came to mend, left by a caller stopped before it cleared it): then the code
    goes to amoCRM, which says what it is.
    """
    try:
        stored = tokens.read()
        if stored is None or not secret_file.saved():
            return None
        secret = secret_file.read()
    except Reauthorize:
        return None     # unreadable or unsafe files: the exchange writes them anew
    meta = stored.meta
    same = (meta.code_fingerprint == fingerprint(form.code) and meta.client_id == form.client_id
            and meta.base_url == form.account.base_url and meta.redirect_uri == form.redirect_uri
            and secret == form.client_secret)
    reauth = state.read().get("reauth")
    since = reauth.get("since") if isinstance(reauth, dict) else None
    refused = bool(reauth) and not (isinstance(since, (int, float)) and since < meta.issued_at)
    return meta if same and not refused else None


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
    if is_jwt(code):     # amoCRM's codes are opaque (def50200…); a JWT is an access token
        raise ConfigError(code="code_is_token")
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
    ending (a long-lived token's last two weeks) | needs_reauth | blocked | unpaid.
    ``kind``: oauth | long_lived (no refresh token: ``refresh_*`` are None)."""

    state: str
    kind: str = "oauth"
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
        return TokenStatus("not_authorized", reason="enter the one-time code (or a long-lived token) in "
                                                       "the module settings")
    common: Dict[str, Any] = {
        "kind": meta.kind, "base_url": meta.base_url, "subdomain": meta.subdomain,
        "access_expires_at": meta.expires_at}
    if not meta.long_lived:
        common.update(refresh_issued_at=meta.refresh_issued_at,
                      refresh_expires_at=meta.refresh_issued_at + REFRESH_LIFETIME)
    if shared.get("reauth"):
        return TokenStatus("needs_reauth", reason=str(shared["reauth"].get("reason", "")), **common)
    stop = shared.get("stop")
    if stop:
        return TokenStatus(str(stop.get("reason", "blocked")), reason=str(stop.get("detail", "")), **common)
    now = clock()
    if meta.long_lived:
        return _long_lived_status(meta, now, common)
    if now >= meta.refresh_issued_at + REFRESH_LIFETIME:
        return TokenStatus("needs_reauth", reason="the refresh token is older than 3 months", **common)
    if now >= meta.expires_at:
        return TokenStatus("expired", reason="refreshed automatically on the next request", **common)
    if meta.expires_at - now < margin:
        return TokenStatus("expiring", **common)
    return TokenStatus("ok", **common)


def _long_lived_status(meta: TokenMeta, now: float, common: Dict[str, Any]) -> TokenStatus:
    """A long-lived token is never renewed by the module: its end is the admin's to act on."""
    until = day_of(meta.expires_at)
    if now >= meta.expires_at:
        return TokenStatus("needs_reauth", reason=f"the long-lived token ended on {until}: make a new one in "
                           "amoCRM and enter it in the module settings", **common)
    if meta.expires_at - now < RENEW_AHEAD:
        return TokenStatus("ending", reason=f"the long-lived token ends on {until}: make a new one in amoCRM "
                           "and enter it in the module settings before then", **common)
    return TokenStatus("ok", **common)
