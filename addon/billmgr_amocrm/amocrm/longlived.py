"""Authorize with a private integration's long-lived token instead of the one-time code.

amoCRM lets a private integration (the kind a hosting provider makes in its own account)
issue a long-lived token, valid from one day to five years, with no refresh token. Nothing
single-use is then ever spent: no refresh can be lost to a power cut or a killed process,
two hosts cannot race for one refresh token, and months without events cannot let the
pair lapse. What is left to the admin is the token's end date, which the status screen
shows and warns about two weeks ahead (:func:`.authorization.token_status`).

The token is a JWT whose ``exp`` claim is its end: amoCRM's own PHP SDK reads it the same way
(amocrm-api-php's ``LongLivedAccessToken`` parses the JWT and takes ``exp``), so a pasted value
without one is refused before any request.

The token is tried on the account (``GET /api/v4/account``) before anything is stored: a
revoked token, one of another account or a mistyped address leaves the stored tokens as
they were. The previous pair (if any) is replaced; its refresh token is not spent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Protocol

from ..errors import AuthorizationRefused, ConfigError, RetryLater
from ..logsetup import register_secret
from .circuit import ClientState
from .models import LONG_LIVED, TokenMeta
from .oauth import jwt_claims, unreachable
from .tokens import TokenSet, TokenStore
from .transport import Reply
from .urls import AccountUrl, parse_account_url

log = logging.getLogger("billmgr_amocrm.amocrm")

ACCOUNT_PATH = "/api/v4/account"
OPAQUE_PREFIX = "def50200"      # amoCRM's codes and refresh tokens (league/oauth2-server's encryption)
RENEW_AHEAD = 14 * 86400.0      # the status screen asks for a new token this long before the end


class Probe(Protocol):
    """``GET /api/v4/account`` on ``account`` with ``token``, within the host's rate limit and past
    its stop gate (this authorization is what clears a stop)."""

    def __call__(self, account: AccountUrl, token: str) -> Reply: ...


@dataclass(frozen=True)
class LongLivedForm:
    """The account address and the token, checked without the network."""

    account: AccountUrl
    token: str
    claims: Dict[str, Any]

    def __repr__(self) -> str:  # never print the token
        return f"LongLivedForm(account={self.account.base_url!r})"


def check_long_lived_form(base_url: str, token: str, *, now: float) -> LongLivedForm:
    """The address and the token as pasted (line breaks and a ``Bearer`` prefix dropped): the
    token must be an amoCRM token (a JWT with an end date) that has not ended yet."""
    token = "".join((token or "").split())
    if token.lower().startswith("bearer"):
        token = token[len("bearer"):]
    register_secret(token)
    account = parse_account_url(base_url)
    if not token:
        raise ConfigError(code="long_lived_empty")
    claims = jwt_claims(token)
    expires = claims.get("exp")
    if token.startswith(OPAQUE_PREFIX):      # what amoCRM's one-time codes look like
        raise ConfigError(code="long_lived_is_code")
    if not claims or not isinstance(expires, (int, float)) or isinstance(expires, bool):
        raise ConfigError(code="long_lived_not_token")
    if expires <= now:
        raise ConfigError(code="long_lived_ended", params={"until": day_of(expires)})
    return LongLivedForm(account, token, claims)


def authorize_long_lived(base_url: str, token: str, *, probe: Probe, tokens: TokenStore, state: ClientState,
                         clock: Callable[[], float] = time.time) -> TokenMeta:
    """Try the token on the account, then store it (0600, atomic) as the host's only token and
    clear the re-authorize and stop states. Raises ConfigError (bad address or token, not an
    amoCRM account, unreachable), AuthorizationRefused (amoCRM refused the token), RetryLater."""
    form = check_long_lived_form(base_url, token, now=clock())
    answer = account_answer(_probed(probe, form), form.account)
    meta = long_lived_meta(form, answer, now=clock())
    with tokens.lock():
        tokens.write(TokenSet(access=form.token, refresh="", meta=meta))
    state.clear_reauth()
    state.clear_stop()
    log.info("authorized in amoCRM %s with a long-lived token valid until %s", meta.subdomain,
             day_of(meta.expires_at))
    return meta


def _probed(probe: Probe, form: LongLivedForm) -> Reply:
    try:
        return probe(form.account, form.token)
    except RetryLater as exc:
        raise unreachable(exc, form.account) from None


def account_answer(reply: Reply, account: AccountUrl) -> Dict[str, Any]:
    """The account amoCRM describes for this token, or why the token cannot be used there."""
    if reply.status == 401:
        raise AuthorizationRefused(code="auth_long_lived_bad", params={"url": account.base_url},
                                   reason="bad_token", detail=reply.summary(), **reply.where())
    if reply.status != 200:
        raise ConfigError(code="not_amocrm_status", params={"url": account.base_url, "status": reply.status},
                          detail=reply.summary(), **reply.where())
    data = reply.json()
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        raise ConfigError(code="not_amocrm_answer", params={"url": account.base_url}, **reply.where())
    answered = str(data.get("subdomain") or "")
    if answered and account.subdomain != "emulator" and answered.lower() != account.subdomain.lower():
        raise ConfigError(code="long_lived_other_account",
                          params={"url": account.base_url, "account": f"{answered}.{account.base_domain}"})
    return data


def long_lived_meta(form: LongLivedForm, answer: Dict[str, Any], *, now: float) -> TokenMeta:
    """``token.json`` for a long-lived token: its end date is the token's own (amoCRM's clock)."""
    claims = form.claims
    account_id = answer.get("id", claims.get("account_id"))
    audience = claims.get("aud")
    return TokenMeta(
        kind=LONG_LIVED, base_url=form.account.base_url,
        client_id=str(audience) if isinstance(audience, (str, int)) else "", redirect_uri="",
        subdomain=form.account.subdomain,
        base_domain=str(claims.get("base_domain") or form.account.base_domain),
        api_domain=str(claims.get("api_domain") or ""),
        account_id=account_id if isinstance(account_id, int) else None,
        issued_at=now, expires_at=float(claims["exp"]), refresh_issued_at=now)


def day_of(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))
