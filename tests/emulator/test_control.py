"""Control API, request log, reset, clock, standalone subprocess and state file."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.amocrm_emulator import EmulatorControl, EmulatorHandle, start_emulator
from tests.emulator.conftest import Api


def test_request_log_and_state(api: Api, emu: EmulatorHandle) -> None:
    api.post("/api/v4/contacts", [{"name": "logged", "request_id": "r"}])
    api.get("/api/v4/contacts", {"query": "logged"})
    log = emu.control.requests()
    post = next(e for e in log if e["method"] == "POST")
    assert post["path"] == "/api/v4/contacts" and post["status"] == 200
    assert post["body"] == [{"name": "logged", "request_id": "r"}]
    assert post["emulator_time"] and post["wall_time"] and post["request_id"]
    assert post["sent_time"] <= post["arrival_time"] and post["refused"] is None
    assert post["delays"] == {"inbound": 0.0, "answer": 0.0, "outbound": 0.0}
    assert post["integration"] == emu.integration["client_id"]
    get = next(e for e in log if e["method"] == "GET")
    assert get["query"] == {"query": ["logged"]}
    assert emu.control.requests(since=log[-1]["seq"]) == []
    state = emu.control.state()
    assert {
        "entities",
        "custom_fields",
        "tags",
        "pipelines",
        "users",
        "token_stats",
        "clock",
        "faults",
        "rate",
        "latency",
        "notes",
        "tasks",
        "task_types",
    } <= state.keys()
    assert state["token_stats"]["access_tokens_issued"] >= 1


def test_clock_set_drives_timestamps(api: Api, emu: EmulatorHandle) -> None:
    emu.control.set_time(1_700_000_000)
    [made] = api.create("companies", [{"name": "dated"}])
    assert abs(api.get(f"/api/v4/companies/{made['id']}").json()["created_at"] - 1_700_000_000) < 60


def test_reset_keeps_credentials_and_clears_the_rest(api: Api, emu: EmulatorHandle) -> None:
    api.create("contacts", [{"name": "x"}])
    emu.control.add_fault("status", status=503)
    integration = emu.control.reset()
    assert integration["client_id"] == emu.integration["client_id"]
    state = emu.control.state()
    assert state["entities"]["contacts"] == [] and state["faults"] == [] and emu.control.requests() == []
    token = requests.post(
        emu.url + "/oauth2/access_token",
        data={
            "client_id": integration["client_id"],
            "client_secret": integration["client_secret"],
            "redirect_uri": integration["redirect_uri"],
            "grant_type": "authorization_code",
            "code": integration["auth_code"],
        },
        timeout=10,
    )
    assert token.status_code == 200


def test_unknown_routes(api: Api, emu: EmulatorHandle) -> None:
    assert api.get("/api/v4/nothing").status_code == 404
    assert requests.get(emu.url + "/_emulator/nothing", timeout=10).status_code == 404
    assert (
        requests.post(emu.url + "/_emulator/faults", json={"action": "explode"}, timeout=10).status_code
        == 400
    )


def test_standalone_subprocess_with_state_file(tmp_path: Path) -> None:
    state_file = tmp_path / "amocrm.json"
    first = start_emulator(subprocess_mode=True, state_file=str(state_file))
    try:
        assert first.integration["auth_code"].startswith("def50200")
        assert first.integration["redirect_uri"]
        api = Api(first)
        [made] = api.create("contacts", [{"name": "persisted"}])
        note = {"entity_id": made["id"], "note_type": "common", "params": {"text": "kept"}}
        assert api.post("/api/v4/contacts/notes", [note]).status_code == 200
        task = {
            "text": "call",
            "complete_till": 1_900_000_000,
            "entity_type": "contacts",
            "entity_id": made["id"],
        }
        assert api.post("/api/v4/tasks", [task]).status_code == 200
        tokens = first.tokens()
    finally:
        first.stop()
    assert state_file.exists()
    second = start_emulator(subprocess_mode=True, state_file=str(state_file))
    try:
        assert second.integration["client_id"] == first.integration["client_id"]
        headers = {"Authorization": "Bearer " + tokens["access_token"]}
        body = requests.get(f"{second.url}/api/v4/contacts/{made['id']}", headers=headers, timeout=10).json()
        assert body["name"] == "persisted" and body["closest_task_at"] == 1_900_000_000
        notes = requests.get(f"{second.url}/api/v4/contacts/{made['id']}/notes", headers=headers, timeout=10)
        assert [n["params"]["text"] for n in notes.json()["_embedded"]["notes"]] == ["kept"]
        tasks = requests.get(
            f"{second.url}/api/v4/tasks",
            params={"filter[entity_type]": "contacts", "filter[entity_id][]": made["id"]},
            headers=headers,
            timeout=10,
        )
        assert [t["text"] for t in tasks.json()["_embedded"]["tasks"]] == ["call"]
        # rate limiting is on by default in the standalone server
        rate = EmulatorControl(second.url).state()["rate"]
        assert rate["enabled"] is True and rate["limit"] == 7
    finally:
        second.stop()


def test_in_process_context_manager() -> None:
    with start_emulator(rate_limit_enabled=False, subdomain="acme") as emu:
        account = emu.session().get(emu.url + "/api/v4/account", timeout=10).json()
        assert account["subdomain"] == "acme"
