"""The OAuth token endpoint: exchange a one-time code, refresh a pair.

Token requests are writes: never resent after they may have reached amoCRM
(a lost answer may have spent the single-use code or refresh token).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Dict, Optional

from pydantic import ValidationError

from ..errors import AmbiguousWriteError, AmoError, AuthorizationRefused, ConfigError, RetryLater
from ..logsetup import register_secret
from .models import TokenMeta, TokenResponse
from .tokens import TokenSet, fingerprint
from .transport import Reply, Transport
from .urls import AccountUrl

TOKEN_PATH = "/oauth2/access_token"  # noqa: S105 - an endpoint, not a secret
BAD_CLIENT_MARKS = ("некорректный клиент", "авторизация клиента", "invalid_client")
REVOKED_HINTS = ("revoked", "expired", "cannot decrypt", "invalid")


def jwt_claims(token: str) -> Dict[str, Any]:
    """The payload of a JWT, unverified (only for domains and ids, never for trust); {} if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_jwt(text: str) -> bool:
    """An access token (amoCRM's are JWTs with an end date), as opposed to an opaque code or
    refresh token (``def50200…``)."""
    return isinstance(jwt_claims(text).get("exp"), (int, float))


def _refused(reply: Reply, grant: str) -> AuthorizationRefused:
    problem = reply.problem()
    text = " ".join((problem.title, problem.detail, problem.hint)).lower()
    where = reply.where()
    detail = reply.summary()
    if reply.status == 401 and any(m in text for m in BAD_CLIENT_MARKS):
        reason = "bad_client"
    elif grant == "authorization_code":
        reason = "bad_code"
    elif reply.status in (400, 401) and (not text.strip() or any(h in text for h in REVOKED_HINTS)):
        reason = "revoked"
    else:
        reason = "refused"
    return AuthorizationRefused(code=f"auth_{reason}", params={"status": reply.status}, reason=reason,
                                detail=detail, **where)


def request_tokens(transport: Transport, body: Dict[str, str], *, bypass_gate: bool = False) -> TokenResponse:
    """POST the token endpoint; classify every refusal; the body's secrets never reach a message."""
    grant = body["grant_type"]
    reply = transport.send("POST", TOKEN_PATH, json_body=body, bypass_gate=bypass_gate)
    if reply.status in (400, 401):
        raise _refused(reply, grant)
    if reply.status != 200:
        raise ConfigError(code="not_amocrm_status",
                          params={"url": transport.base_url, "status": reply.status},
                          detail=reply.summary(), **reply.where())
    try:
        tokens = TokenResponse.model_validate(reply.json())
    except ValidationError:
        raise ConfigError(code="not_amocrm_answer", params={"url": transport.base_url},
                          **reply.where()) from None
    register_secret(tokens.access_token)
    register_secret(tokens.refresh_token)
    return tokens


def token_set(resp: TokenResponse, *, account: AccountUrl, client_id: str, redirect_uri: str,
              requested_at: float, code: str = "") -> TokenSet:
    """Pair + metadata; expiry from ``expires_in`` on our clock (the server's clock may differ).
    ``code``: the one-time code the pair was exchanged for (none for a refresh)."""
    claims = jwt_claims(resp.access_token)
    account_id = claims.get("account_id")
    meta = TokenMeta(
        base_url=account.base_url, client_id=client_id, redirect_uri=redirect_uri,
        subdomain=account.subdomain, base_domain=str(claims.get("base_domain") or account.base_domain),
        api_domain=str(claims.get("api_domain") or ""),
        account_id=account_id if isinstance(account_id, int) else None,
        issued_at=requested_at, expires_at=requested_at + resp.expires_in,
        refresh_issued_at=requested_at, refresh_fingerprint=fingerprint(resp.refresh_token),
        code_fingerprint=fingerprint(code) if code else "")
    return TokenSet(access=resp.access_token, refresh=resp.refresh_token, meta=meta)


def exchange_code(transport: Transport, *, account: AccountUrl, client_id: str, client_secret: str,
                  redirect_uri: str, code: str, clock: Any = time.time) -> TokenSet:
    body = {"client_id": client_id, "client_secret": client_secret, "grant_type": "authorization_code",
            "code": code, "redirect_uri": redirect_uri}
    requested_at = clock()
    try:
        resp = request_tokens(transport, body, bypass_gate=True)
    except AmbiguousWriteError as exc:
        raise RetryLater(code="code_exchange_lost", method=exc.method, path=exc.path, status=exc.status,
                         request_id=exc.request_id) from None
    except RetryLater as exc:
        raise unreachable(exc, account) from None
    return token_set(resp, account=account, client_id=client_id, redirect_uri=redirect_uri,
                     requested_at=requested_at, code=code)


def unreachable(exc: RetryLater, account: AccountUrl) -> AmoError:
    """An authorization's request that got no answer at all says the address or this host's
    network is wrong (ConfigError); one amoCRM answered (429, 5xx) stays a RetryLater."""
    if exc.status is not None:
        return exc
    return ConfigError(code="unreachable_account", params={"url": account.base_url, "reason": exc.message},
                       method=exc.method, path=exc.path)


def refresh_pair(transport: Transport, current: TokenSet, *, client_secret: str,
                 account: Optional[AccountUrl] = None, clock: Any = time.time) -> TokenSet:
    meta = current.meta
    body = {"client_id": meta.client_id, "client_secret": client_secret, "grant_type": "refresh_token",
            "refresh_token": current.refresh, "redirect_uri": meta.redirect_uri}
    requested_at = clock()
    try:
        resp = request_tokens(transport, body)
    except AmbiguousWriteError as exc:
        raise RetryLater(code="refresh_lost", method=exc.method, path=exc.path, status=exc.status,
                         request_id=exc.request_id) from None
    acct = account or AccountUrl(meta.base_url, meta.subdomain, meta.base_domain)
    new = token_set(resp, account=acct, client_id=meta.client_id, redirect_uri=meta.redirect_uri,
                    requested_at=requested_at)
    if not new.meta.api_domain and meta.api_domain:
        new = TokenSet(new.access, new.refresh, new.meta.model_copy(update={"api_domain": meta.api_domain}))
    return new
