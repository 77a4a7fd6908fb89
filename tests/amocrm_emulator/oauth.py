"""OAuth 2.0 as amoCRM runs it (reference §2).

* Authorization codes: single use, 20 minutes.
* Access tokens: HS256 JWTs, 24 hours; an old access token stays valid until its
  ``exp`` even after a refresh (reference "Open questions": assumed).
* Long-lived tokens (private integrations): access JWTs of 1 day to 5 years, no refresh
  token; the owner can revoke one (control ``revoke_token``), after which it gets 401.
* Refresh tokens: ``def50200…``, single use, 3 months. Reuse → 401 "Token has been
  revoked". Every presentation is counted per token so tests can assert that each
  refresh token was used exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any, Dict, Mapping, Optional, Tuple

from . import errors
from .clock import Clock
from .state import State

CODE_LIFETIME = 20 * 60
ACCESS_LIFETIME = 86400
REFRESH_LIFETIME = 90 * 86400
LONG_LIVED_MIN = 86400            # a long-lived token: one day ...
LONG_LIVED_MAX = 5 * 365 * 86400  # ... to five years
BASE_DOMAIN = "amocrm.ru"
API_DOMAIN = "api-b.amocrm.ru"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _opaque_token() -> str:
    # league/oauth2-server style: "def50200" + a long hex blob.
    return "def50200" + secrets.token_hex(180)


def jwt_claims_unverified(token: str) -> Optional[Dict[str, Any]]:
    """Decode JWT claims without checking anything (used to attribute traffic)."""
    try:
        claims = json.loads(_unb64(token.split(".")[1]))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


class OAuth:
    def __init__(self, state: State, clock: Clock) -> None:
        self.state = state
        self.clock = clock

    # --- issuing -----------------------------------------------------------
    def new_auth_code(self, client_id: str) -> str:
        code = _opaque_token()
        self.state.auth_codes[code] = {
            "client_id": client_id,
            "expires_at": self.clock.now() + CODE_LIFETIME,
            "used": False,
        }
        return code

    def issue_pair(self, client_id: str) -> Dict[str, Any]:
        access, jti = self._access_token(client_id, ACCESS_LIFETIME)
        now = self.clock.now_int()
        refresh = _opaque_token()
        self.state.refresh_tokens[refresh] = {
            "client_id": client_id,
            "issued_at": now,
            "expires_at": now + REFRESH_LIFETIME,
            "used": False,
            "presented": 0,
            "access_jti": jti,
        }
        return {
            "token_type": "Bearer",
            "expires_in": ACCESS_LIFETIME,
            "access_token": access,
            "refresh_token": refresh,
            "server_time": now,
        }

    def issue_long_lived(self, client_id: str, lifetime: int) -> Dict[str, Any]:
        """A private integration's long-lived token (reference §2: 1 day to 5 years, no refresh
        token): an access JWT like any other, only with a longer ``exp``."""
        if not LONG_LIVED_MIN <= lifetime <= LONG_LIVED_MAX:
            raise ValueError(f"a long-lived token lives {LONG_LIVED_MIN} to {LONG_LIVED_MAX} seconds")
        access, _ = self._access_token(client_id, lifetime)
        return {"access_token": access, "expires_at": self.clock.now_int() + lifetime}

    def revoke(self, token: str) -> bool:
        """The integration's owner revoked this access token in amoCRM: every call with it is a 401."""
        claims = jwt_claims_unverified(token) or {}
        return self.state.access_tokens.pop(str(claims.get("jti")), None) is not None

    def _access_token(self, client_id: str, lifetime: int) -> Tuple[str, str]:
        now = self.clock.now_int()
        jti = uuid.uuid4().hex
        claims = {
            "aud": client_id,
            "jti": jti,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "sub": str(self.state.account["current_user_id"]),
            "grant_type": "",
            "account_id": self.state.account["id"],
            "base_domain": BASE_DOMAIN,
            "version": 2,
            "scopes": ["crm", "files", "files_delete", "notifications", "push_notifications"],
            "hash_uuid": str(uuid.uuid4()),
            "api_domain": API_DOMAIN,
        }
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(
            hmac.new(self.state.jwt_key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        )
        self.state.access_tokens[jti] = {
            "client_id": client_id,
            "issued_at": now,
            "expires_at": now + lifetime,
        }
        return f"{header}.{payload}.{signature}", jti

    # --- token endpoint ---------------------------------------------------
    def token_endpoint(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        grant = params.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            raise errors.oauth_request_error(
                "Check the `grant_type` parameter" if grant else "Check the `grant_type` parameter"
            )
        # Count the presentation before any other check: a reused token is still "used".
        refresh = params.get("refresh_token") if grant == "refresh_token" else None
        record = self.state.refresh_tokens.get(refresh) if isinstance(refresh, str) else None
        if record is not None:
            record["presented"] += 1
        integration = self.state.integrations.get(str(params.get("client_id") or ""))
        if integration is None or params.get("client_secret") != integration["client_secret"]:
            raise errors.oauth_client_error()
        redirect = params.get("redirect_uri")
        if not redirect:
            raise errors.oauth_request_error("Check the `redirect_uri` parameter")
        if redirect != integration["redirect_uri"]:
            raise errors.oauth_client_error()
        client_id = integration["client_id"]
        if grant == "authorization_code":
            return self._exchange_code(params.get("code"), client_id)
        return self._refresh(refresh, record, client_id)

    def _exchange_code(self, code: Any, client_id: str) -> Dict[str, Any]:
        if not code:
            raise errors.oauth_request_error("Check the `code` parameter")
        entry = self.state.auth_codes.get(code) if isinstance(code, str) else None
        if entry is None:
            raise errors.oauth_request_error("Cannot decrypt the authorization code")
        if entry["client_id"] != client_id:
            raise errors.oauth_request_error("Authorization code was not issued to this client")
        if entry["used"]:
            raise errors.oauth_request_error("Authorization code has been revoked")
        if self.clock.now() > entry["expires_at"]:
            raise errors.oauth_request_error("Authorization code has expired")
        entry["used"] = True
        return self.issue_pair(client_id)

    def _refresh(self, token: Any, record: Optional[Dict[str, Any]], client_id: str) -> Dict[str, Any]:
        if not token:
            raise errors.oauth_request_error("Check the `refresh_token` parameter")
        if record is None:
            raise errors.oauth_request_error("Cannot decrypt the refresh token", status=401)
        if record["client_id"] != client_id:
            raise errors.oauth_request_error("Token is not linked to client", status=401)
        if record["used"]:
            raise errors.oauth_request_error("Token has been revoked", status=401)
        if self.clock.now() > record["expires_at"]:
            raise errors.oauth_request_error("Token has expired", status=401)
        record["used"] = True
        return self.issue_pair(client_id)

    # --- API authentication -------------------------------------------------
    def authenticate(self, authorization: Optional[str]) -> str:
        """Return the client_id of a valid Bearer token, else raise the API 401."""
        if not authorization or not authorization.startswith("Bearer "):
            raise errors.unauthorized()
        token = authorization[len("Bearer ") :].strip()
        parts = token.split(".")
        if len(parts) != 3:
            raise errors.unauthorized()
        expected = _b64(
            hmac.new(self.state.jwt_key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        )
        if not hmac.compare_digest(expected, parts[2]):
            raise errors.unauthorized()
        claims = jwt_claims_unverified(token) or {}
        known = self.state.access_tokens.get(str(claims.get("jti")))
        if known is None or self.clock.now() >= known["expires_at"]:
            raise errors.unauthorized()
        if known["client_id"] not in self.state.integrations:
            raise errors.unauthorized()
        return str(known["client_id"])

    def stats(self) -> Dict[str, Any]:
        refresh = self.state.refresh_tokens
        return {
            "access_tokens_issued": len(self.state.access_tokens),
            "refresh_tokens_issued": len(refresh),
            "refresh_tokens_used": sum(1 for r in refresh.values() if r["used"]),
            "refresh_token_presentations": {t: r["presented"] for t, r in refresh.items()},
            "max_presentations_per_refresh_token": max((r["presented"] for r in refresh.values()), default=0),
        }
