"""Notes: create (batch and per entity), read shapes, lists with filters, 204s, validation, deletions."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api, validation_errors, validation_errors_by_item

READ_KEYS = {
    "id",
    "entity_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "responsible_user_id",
    "group_id",
    "note_type",
    "params",
    "account_id",
    "_links",
}


def common(entity_id: Any, text: str, **extra: Any) -> Dict[str, Any]:
    return dict({"entity_id": entity_id, "note_type": "common", "params": {"text": text}}, **extra)


def notes_of(response: Any) -> List[Dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["_embedded"]["notes"])


@pytest.mark.parametrize("entity", ["contacts", "companies", "leads"])
def test_create_echoes_request_id_and_reads_back(api: Api, entity: str) -> None:
    [owner] = api.create(entity, [{"name": "owner"}])
    response = api.post(
        f"/api/v4/{entity}/notes",
        [
            common(owner["id"], "first", request_id="pay-1"),
            {
                "entity_id": owner["id"],
                "note_type": "service_message",
                "params": {"service": "BILLmanager", "text": "Payment #7 received"},
            },
        ],
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["_links"]["self"]["href"].endswith(f"/api/v4/{entity}/notes")
    made = body["_embedded"]["notes"]
    assert [n["request_id"] for n in made] == ["pay-1", "1"]
    assert [n["entity_id"] for n in made] == [owner["id"]] * 2 and made[0]["id"] != made[1]["id"]
    assert set(made[0]) == {"id", "entity_id", "request_id", "_links"}
    self_href = made[0]["_links"]["self"]["href"]
    assert self_href.endswith(f"/api/v4/{entity}/{owner['id']}/notes/{made[0]['id']}")
    note = api.get(f"/api/v4/{entity}/notes/{made[0]['id']}").json()
    assert set(note) == READ_KEYS
    assert note["note_type"] == "common" and note["params"] == {"text": "first"}
    assert note["entity_id"] == owner["id"] and note["created_by"] == 504141 and note["account_id"]
    assert api.http.get(self_href, timeout=10).json() == note  # the self link answers too
    service = api.get(f"/api/v4/{entity}/notes/{made[1]['id']}").json()
    assert service["params"] == {"service": "BILLmanager", "text": "Payment #7 received"}


def test_create_under_an_entity_takes_its_id_from_the_path(api: Api) -> None:
    [lead, other] = api.create("leads", [{"name": "L"}, {"name": "other"}])
    response = api.post(
        f"/api/v4/leads/{lead['id']}/notes",
        [{"note_type": "common", "params": {"text": "a"}}, common(other["id"], "b", request_id="b")],
    )
    made = notes_of(response)
    assert response.json()["_links"]["self"]["href"].endswith(f"/api/v4/leads/{lead['id']}/notes")
    assert [n["entity_id"] for n in made] == [lead["id"], lead["id"]]  # the path wins
    listed = notes_of(api.get(f"/api/v4/leads/{lead['id']}/notes"))
    assert [n["params"]["text"] for n in listed] == ["a", "b"]
    assert api.get(f"/api/v4/leads/{other['id']}/notes").status_code == 204
    missing = api.post("/api/v4/leads/1/notes", [{"note_type": "common", "params": {"text": "x"}}])
    assert validation_errors(missing) == {"entity_id": "NotSupportedChoice"}


def test_lists_filter_order_page_and_answer_204_when_empty(api: Api, emu: EmulatorHandle) -> None:
    assert api.get("/api/v4/leads/notes").status_code == 204
    leads = api.create("leads", [{"name": "a"}, {"name": "b"}])
    [person] = api.create("contacts", [{"name": "p"}])
    first = notes_of(
        api.post("/api/v4/leads/notes", [common(leads[0]["id"], "a1"), common(leads[1]["id"], "b1")])
    )
    emu.control.advance(100)
    later = notes_of(
        api.post(
            "/api/v4/leads/notes",
            [
                {
                    "entity_id": leads[0]["id"],
                    "note_type": "service_message",
                    "params": {"service": "S", "text": "a2"},
                },
            ],
        )
    )
    api.post("/api/v4/contacts/notes", [common(person["id"], "c1")])

    def texts(params: Any, path: str = "/api/v4/leads/notes") -> List[str]:
        response = api.get(path, params)
        return [] if response.status_code == 204 else [n["params"]["text"] for n in notes_of(response)]

    assert texts({}) == ["a1", "b1", "a2"]  # only the leads' notes, in id order
    assert texts({}, "/api/v4/contacts/notes") == ["c1"]
    assert texts({"filter[entity_id][]": leads[0]["id"]}) == ["a1", "a2"]
    assert texts([("filter[entity_id][]", leads[1]["id"]), ("filter[entity_id][]", leads[0]["id"])]) == [
        "a1",
        "b1",
        "a2",
    ]
    assert texts({"filter[note_type][]": "service_message"}) == ["a2"]
    assert texts({"filter[note_type]": "common"}) == ["a1", "b1"]
    assert texts({"filter[id][]": first[1]["id"]}) == ["b1"]
    stamp = api.get(f"/api/v4/leads/notes/{later[0]['id']}").json()["updated_at"]
    assert texts({"filter[updated_at][from]": stamp}) == ["a2"]
    assert texts({"filter[updated_at][to]": stamp - 50}) == ["a1", "b1"]
    assert texts({"filter[updated_at]": stamp}) == ["a2"]
    assert texts({"order[updated_at]": "desc"}) == ["a2", "b1", "a1"]
    assert texts({"order[id]": "desc"}, f"/api/v4/leads/{leads[0]['id']}/notes") == ["a2", "a1"]
    assert texts({"filter[note_type]": "service_message"}, f"/api/v4/leads/{leads[1]['id']}/notes") == []
    page1 = api.get("/api/v4/leads/notes", {"limit": 2}).json()
    assert len(page1["_embedded"]["notes"]) == 2 and "next" in page1["_links"]
    assert [
        n["params"]["text"]
        for n in api.get("/api/v4/leads/notes", {"limit": 2, "page": 2}).json()["_embedded"]["notes"]
    ] == ["a2"]
    assert api.get("/api/v4/leads/notes", {"limit": 2, "page": 3}).status_code == 204
    assert api.get("/api/v4/leads/notes", {"limit": 251}).status_code == 400
    assert api.get("/api/v4/leads/notes", {"limit": 250}).status_code == 200


def test_get_by_id_answers_204_for_missing_or_foreign_notes(api: Api) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    [person] = api.create("contacts", [{"name": "P"}])
    [note] = notes_of(api.post("/api/v4/leads/notes", [common(lead["id"], "x")]))
    assert api.get("/api/v4/leads/notes/1").status_code == 204
    assert api.get(f"/api/v4/contacts/notes/{note['id']}").status_code == 204  # a lead's note
    assert api.get(f"/api/v4/leads/{person['id']}/notes/{note['id']}").status_code == 204
    assert api.get(f"/api/v4/leads/notes/{note['id']}").status_code == 200


def test_validation_errors_write_nothing(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    emu.control.deactivate_user(504147)
    response = api.post(
        "/api/v4/leads/notes",
        [
            common(lead["id"], "valid, but the batch fails", request_id="ok"),
            {"note_type": "common", "params": {"text": "no entity"}, "request_id": "no-entity"},
            common(1, "unknown entity", request_id="unknown"),
            {
                "entity_id": lead["id"],
                "note_type": "telepathy",
                "params": {"text": "x"},
                "request_id": "type",
            },
            {"entity_id": lead["id"], "note_type": "common", "params": {}, "request_id": "no-text"},
            {"entity_id": lead["id"], "note_type": "common", "params": {"text": "  "}, "request_id": "blank"},
            {
                "entity_id": lead["id"],
                "note_type": "service_message",
                "params": {"text": "x"},
                "request_id": "no-service",
            },
            {"entity_id": lead["id"], "note_type": "common", "params": "x", "request_id": "params"},
            {"entity_id": lead["id"], "request_id": "no-type"},
            common(lead["id"], "x", request_id="stray", color="red"),
            {
                "entity_id": lead["id"],
                "note_type": "common",
                "params": {"text": "x", "link": "y"},
                "request_id": "stray-param",
            },
            common(lead["id"], "x", request_id="user", responsible_user_id=504147),
            common("1", "x", request_id="string-id"),
        ],
    )
    by_item = validation_errors_by_item(response)
    assert by_item == {
        "no-entity": {"entity_id": "NotBlank"},
        "unknown": {"entity_id": "NotSupportedChoice"},
        "type": {"note_type": "NotSupportedChoice"},
        "no-text": {"params.text": "NotBlank"},
        "blank": {"params.text": "NotBlank"},
        "no-service": {"params.service": "NotBlank"},
        "params": {"params": "InvalidType"},
        "no-type": {"note_type": "NotBlank"},
        "stray": {"color": "FieldNotExpected"},
        "stray-param": {"params.link": "FieldNotExpected"},
        "user": {"responsible_user_id": "NotSupportedChoice"},
        "string-id": {"entity_id": "InvalidType"},
    }
    assert emu.control.state()["notes"] == []
    too_many = api.post("/api/v4/leads/notes", [common(lead["id"], str(n)) for n in range(251)])
    assert validation_errors(too_many) == {"": "TooManyElements"}
    assert api.post("/api/v4/leads/notes", {"entity_id": lead["id"]}).status_code == 400  # not an array


def test_notes_of_an_entity_deleted_in_the_ui_are_gone(api: Api, emu: EmulatorHandle) -> None:
    [kept, gone] = api.create("contacts", [{"name": "kept"}, {"name": "gone"}])
    made = notes_of(api.post("/api/v4/contacts/notes", [common(kept["id"], "k"), common(gone["id"], "g")]))
    emu.control.delete_entity("contacts", gone["id"])
    assert [n["params"]["text"] for n in notes_of(api.get("/api/v4/contacts/notes"))] == ["k"]
    assert api.get(f"/api/v4/contacts/{gone['id']}/notes").status_code == 204
    assert api.get(f"/api/v4/contacts/notes/{made[1]['id']}").status_code == 204
    response = api.post("/api/v4/contacts/notes", [common(gone["id"], "late")])
    assert validation_errors(response) == {"entity_id": "NotSupportedChoice"}
    # a note deleted in the UI is gone as well
    emu.control.delete_entity("notes", made[0]["id"])
    assert api.get("/api/v4/contacts/notes").status_code == 204


def test_notes_share_the_pipeline_state_and_reset(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    emu.control.add_fault("after_commit", path="^/api/v4/leads/notes$", method="POST", status=504, count=1)
    assert api.post("/api/v4/leads/notes", [common(lead["id"], "lost answer")]).status_code == 504
    [stored] = emu.control.state()["notes"]
    assert stored["params"] == {"text": "lost answer"} and stored["entity_id"] == lead["id"]
    [entry] = [e for e in emu.control.requests() if e["path"] == "/api/v4/leads/notes"]
    assert entry["integration"] == emu.integration["client_id"] and entry["status"] == 504
    assert entry["body"] == [common(lead["id"], "lost answer")]
    emu.control.reset()
    assert emu.control.state()["notes"] == []
