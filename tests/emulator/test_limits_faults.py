"""Rate limit (HTML 429), account block (HTML 403), 402, fault injection, search lag."""

from __future__ import annotations

from typing import Callable

import pytest
import requests

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api


def burst_until(api: Api, status: int, limit: int = 60) -> requests.Response:
    """Fire GETs back to back until one answers ``status``; return that response."""
    for _ in range(limit):
        response = api.get("/api/v4/account")
        if response.status_code == status:
            return response
    raise AssertionError(f"no {status} within {limit} requests")


def test_rate_limit_429_html_without_retry_after(amocrm_emulator: EmulatorHandle) -> None:
    api = Api(amocrm_emulator)
    response = burst_until(api, 429)
    assert response.headers["Content-Type"] == "text/html"
    assert "429 Too Many Requests" in response.text and "Retry-After" not in response.headers
    assert response.headers["X-Request-Id"]
    stats = amocrm_emulator.control.rate_stats()
    assert stats["max_accepted"] <= 7 < stats["max_all"]
    assert amocrm_emulator.control.max_requests_per_window(accepted_only=True) <= 7
    assert amocrm_emulator.control.state()["rate"]["total_429"] >= 1


def test_repeated_violations_block_everything_until_lifted(
    amocrm_emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = amocrm_emulator_factory(rate_limit=1, block_after=3)
    api = Api(emu)
    assert "403 Forbidden" in burst_until(api, 403).text
    blocked = requests.post(emu.url + "/oauth2/access_token", json={}, timeout=10)
    assert blocked.status_code == 403 and blocked.headers["Content-Type"] == "text/html"
    assert "403 Forbidden" in blocked.text
    assert emu.control.state()["rate"]["blocked"] is True
    emu.control.unblock()
    emu.control.set_rate(enabled=False)
    assert api.get("/api/v4/account").status_code == 200


def test_manual_block_and_unpaid_account(api: Api, emu: EmulatorHandle) -> None:
    emu.control.block()
    assert api.get("/api/v4/contacts").status_code == 403
    emu.control.unblock()
    emu.control.set_paid(False)
    unpaid = api.get("/api/v4/contacts")
    assert unpaid.status_code == 402 and unpaid.headers["Content-Type"] == "application/problem+json"
    emu.control.set_paid(True)
    assert api.get("/api/v4/contacts").status_code == 204


def test_status_fault_before_write(api: Api, emu: EmulatorHandle) -> None:
    emu.control.add_fault("status", path="^/api/v4/contacts$", method="POST", status=502, count=1)
    failed = api.post("/api/v4/contacts", [{"name": "x"}])
    assert failed.status_code == 502 and failed.headers["Content-Type"] == "text/html"
    assert emu.control.state()["entities"]["contacts"] == []
    assert api.post("/api/v4/contacts", [{"name": "x"}]).status_code == 200
    emu.control.add_fault("status", path="^/api/v4/account", status=500, count=1)
    server_error = api.get("/api/v4/account")
    assert server_error.status_code == 500 and server_error.json()["status"] == 500


def test_probabilistic_faults_are_seeded(api: Api, emu: EmulatorHandle) -> None:
    emu.control.seed_faults(42)
    emu.control.add_fault("status", path="^/api/v4/contacts$", method="POST", status=502, probability=0.2)
    codes = [api.post("/api/v4/contacts", [{"name": f"c{n}"}]).status_code for n in range(40)]
    failures = codes.count(502)
    assert 0 < failures < 40 and set(codes) == {200, 502}
    assert len(emu.control.state()["entities"]["contacts"]) == codes.count(200)
    assert emu.control.faults()[0]["fired"] == failures


def test_write_applied_response_lost(api: Api, emu: EmulatorHandle) -> None:
    emu.control.add_fault("after_commit", path="^/api/v4/leads$", method="POST", status=504, count=1)
    response = api.post("/api/v4/leads", [{"name": "committed"}])
    assert response.status_code == 504
    assert [x["name"] for x in emu.control.state()["entities"]["leads"]] == ["committed"]
    emu.control.add_fault("drop", path="^/api/v4/leads$", method="POST", count=1)
    with pytest.raises(requests.ConnectionError):
        api.post("/api/v4/leads", [{"name": "dropped"}])
    assert [x["name"] for x in emu.control.state()["entities"]["leads"]] == ["committed", "dropped"]


def test_connection_reset_before_processing(api: Api, emu: EmulatorHandle) -> None:
    emu.control.add_fault("reset", path="^/api/v4/leads$", method="POST", count=1)
    with pytest.raises(requests.ConnectionError):
        api.post("/api/v4/leads", [{"name": "never"}])
    assert emu.control.state()["entities"]["leads"] == []
    assert api.post("/api/v4/leads", [{"name": "after"}]).status_code == 200


def test_slow_answer_times_out_client(api: Api, emu: EmulatorHandle) -> None:
    emu.control.add_fault("delay", path="^/api/v4/account$", delay=1.0, count=1)
    with pytest.raises(requests.Timeout):
        api.http.get(api.base + "/api/v4/account", timeout=0.2)


def test_search_index_lag(api: Api, emu: EmulatorHandle) -> None:
    emu.control.set_search_lag(30)
    [made] = api.create(
        "contacts",
        [
            {
                "name": "Lagging",
                "custom_fields_values": [
                    {"field_code": "EMAIL", "values": [{"value": "lag@example.com", "enum_code": "WORK"}]}
                ],
            }
        ],
    )
    assert api.get("/api/v4/contacts", {"query": "lag@example.com"}).status_code == 204
    assert api.get(f"/api/v4/contacts/{made['id']}").status_code == 200
    assert api.get("/api/v4/contacts", {"filter[id]": made["id"]}).status_code == 200
    emu.control.advance(31)
    found = api.get("/api/v4/contacts", {"query": "lag@example.com"}).json()["_embedded"]["contacts"]
    assert [c["id"] for c in found] == [made["id"]]


def test_html_429_on_demand(api: Api, emu: EmulatorHandle) -> None:
    emu.control.add_fault("status", path="^/api/v4/contacts", method="GET", status=429, count=1)
    response = api.get("/api/v4/contacts")
    assert response.status_code == 429 and response.headers["Content-Type"] == "text/html"
    assert "Retry-After" not in response.headers and "<center>nginx</center>" in response.text
    assert api.get("/api/v4/contacts").status_code == 204
