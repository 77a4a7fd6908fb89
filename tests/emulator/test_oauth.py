"""OAuth: code exchange, single-use refresh tokens, client checks, token lifetimes, API 401."""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, List

import requests

from tests.amocrm_emulator import EmulatorHandle


def token_call(emu: EmulatorHandle, form: bool = False, **overrides: Any) -> requests.Response:
    integ = emu.integration
    body = {
        "client_id": integ["client_id"],
        "client_secret": integ["client_secret"],
        "redirect_uri": integ["redirect_uri"],
    }
    body.update(overrides)
    url = emu.url + "/oauth2/access_token"
    if form:
        return requests.post(url, data=body, timeout=10)
    return requests.post(url, json=body, timeout=10)


def exchange(emu: EmulatorHandle, form: bool = False) -> Dict[str, Any]:
    response = token_call(emu, form, grant_type="authorization_code", code=emu.integration["auth_code"])
    assert response.status_code == 200, response.text
    return response.json()


def claims(token: str) -> Dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_code_exchange_json_gives_jwt_pair(emu: EmulatorHandle) -> None:
    pair = exchange(emu)
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 86400
    assert pair["refresh_token"].startswith("def50200")
    header = json.loads(base64.urlsafe_b64decode(pair["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "HS256"
    c = claims(pair["access_token"])
    assert c["aud"] == emu.integration["client_id"] and c["exp"] - c["iat"] == 86400
    assert {"jti", "sub", "account_id", "base_domain", "api_domain"} <= c.keys()
    me = requests.get(
        emu.url + "/api/v4/account", headers={"Authorization": "Bearer " + pair["access_token"]}, timeout=10
    )
    assert me.status_code == 200 and me.json()["subdomain"] == "demo"


def test_code_exchange_form_and_single_use(emu: EmulatorHandle) -> None:
    exchange(emu, form=True)
    again = token_call(emu, grant_type="authorization_code", code=emu.integration["auth_code"])
    assert again.status_code == 400
    body = again.json()
    assert again.headers["Content-Type"] == "application/problem+json"
    assert body["type"].endswith("OAuthProblemJson") and body["hint"] == "Authorization code has been revoked"


def test_code_expires_after_20_minutes(emu: EmulatorHandle) -> None:
    emu.control.advance(20 * 60 + 1)
    response = token_call(emu, grant_type="authorization_code", code=emu.integration["auth_code"])
    assert response.status_code == 400 and response.json()["hint"] == "Authorization code has expired"
    fresh = emu.control.auth_code()
    assert token_call(emu, grant_type="authorization_code", code=fresh).status_code == 200


def test_garbage_code_is_400(emu: EmulatorHandle) -> None:
    response = token_call(emu, grant_type="authorization_code", code="def50200nonsense")
    assert response.status_code == 400 and response.json()["status"] == 400


def test_wrong_client_secret_or_redirect_is_401_bad_client(emu: EmulatorHandle) -> None:
    code = emu.integration["auth_code"]
    overrides: List[Dict[str, Any]] = [
        {"client_secret": "nope"},
        {"redirect_uri": "https://evil.example/cb"},
        {"client_id": "00000000-0000-0000-0000-000000000000"},
    ]
    for override in overrides:
        response = token_call(emu, grant_type="authorization_code", code=code, **override)
        assert response.status_code == 401
        assert response.json()["title"] == "Некорректный клиент"
    # the code was never consumed by the refused attempts
    assert token_call(emu, grant_type="authorization_code", code=code).status_code == 200


def test_refresh_rotates_and_reuse_is_revoked(emu: EmulatorHandle) -> None:
    first = exchange(emu)
    second = token_call(emu, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200
    new = second.json()
    assert new["refresh_token"] != first["refresh_token"]
    reuse = token_call(emu, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 401
    body = reuse.json()
    assert body["hint"] == "Token has been revoked" and body["title"] == "Некорректный запрос"
    assert body["detail"] == "В запросе отсутствует ряд параметров или параметры невалидны"
    uses = emu.control.refresh_token_uses()
    assert uses[first["refresh_token"]] == 2 and uses[new["refresh_token"]] == 0
    # the old access token stays valid until its exp
    old = requests.get(
        emu.url + "/api/v4/account", headers={"Authorization": "Bearer " + first["access_token"]}, timeout=10
    )
    assert old.status_code == 200


def test_refresh_token_expires_after_three_months(emu: EmulatorHandle) -> None:
    pair = exchange(emu)
    emu.control.advance(90 * 86400 + 1)
    response = token_call(emu, grant_type="refresh_token", refresh_token=pair["refresh_token"])
    assert response.status_code == 401 and response.json()["hint"] == "Token has expired"


def test_api_401_for_missing_expired_or_forged_token(emu: EmulatorHandle) -> None:
    pair = exchange(emu)
    url = emu.url + "/api/v4/contacts"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {
        "title": "Unauthorized",
        "type": "https://httpstatus.es/401",
        "status": 401,
        "detail": "Неверный логин или пароль",
    }
    head, payload, _ = pair["access_token"].split(".")
    forged = requests.get(url, headers={"Authorization": f"Bearer {head}.{payload}.AAAA"}, timeout=10)
    assert forged.status_code == 401
    emu.control.advance(86400)
    expired = requests.get(url, headers={"Authorization": "Bearer " + pair["access_token"]}, timeout=10)
    assert expired.status_code == 401 and expired.headers["Content-Type"] == "application/problem+json"


def test_new_integration_has_its_own_credentials(emu: EmulatorHandle) -> None:
    other = emu.control.new_integration("https://other.example/cb")
    response = requests.post(
        emu.url + "/oauth2/access_token",
        json={
            "client_id": other["client_id"],
            "client_secret": other["client_secret"],
            "redirect_uri": other["redirect_uri"],
            "grant_type": "authorization_code",
            "code": other["auth_code"],
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert claims(response.json()["access_token"])["aud"] == other["client_id"]
    # a code of one integration is not accepted for another
    code = emu.control.auth_code(other["client_id"])
    assert token_call(emu, grant_type="authorization_code", code=code).status_code == 400
