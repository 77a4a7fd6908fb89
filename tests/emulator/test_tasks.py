"""Tasks: create, read shape, list filters and order, edit and complete, validation, deletions."""

from __future__ import annotations

from typing import Any, Dict, List

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api, validation_errors, validation_errors_by_item

READ_KEYS = {
    "id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "responsible_user_id",
    "group_id",
    "entity_id",
    "entity_type",
    "is_completed",
    "task_type_id",
    "text",
    "duration",
    "complete_till",
    "result",
    "account_id",
    "_links",
}
DUE = 1_900_000_000


def task(entity_id: Any, text: str = "Call about the renewal", **extra: Any) -> Dict[str, Any]:
    return dict({"text": text, "complete_till": DUE, "entity_id": entity_id, "entity_type": "leads"}, **extra)


def created(api: Api, items: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    response = api.post("/api/v4/tasks", items)
    assert response.status_code == 200, response.text
    return list(response.json()["_embedded"]["tasks"])


def listed(api: Api, params: Any = None) -> List[int]:
    response = api.get("/api/v4/tasks", params)
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["_embedded"]["tasks"]]


def test_create_defaults_read_shape_and_closest_task_at(api: Api) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    response = api.post(
        "/api/v4/tasks", [task(lead["id"], request_id="renew-1"), {"text": "free", "complete_till": DUE}]
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/hal+json"
    body = response.json()
    assert body["_links"]["self"]["href"].endswith("/api/v4/tasks")
    made = body["_embedded"]["tasks"]
    assert [t["request_id"] for t in made] == ["renew-1", "1"]
    assert set(made[0]) == {"id", "request_id", "_links"}
    assert made[0]["_links"]["self"]["href"].endswith(f"/api/v4/tasks/{made[0]['id']}")
    read = api.get(f"/api/v4/tasks/{made[0]['id']}").json()
    assert set(read) == READ_KEYS
    assert (read["entity_type"], read["entity_id"], read["text"], read["complete_till"]) == (
        "leads",
        lead["id"],
        "Call about the renewal",
        DUE,
    )
    assert read["responsible_user_id"] == 504141 and read["created_by"] == 504141  # the current user
    assert (read["task_type_id"], read["is_completed"], read["duration"], read["group_id"]) == (
        1,
        False,
        0,
        0,
    )
    assert read["result"] == []  # amoCRM's empty result is an empty array
    free = api.get(f"/api/v4/tasks/{made[1]['id']}").json()
    assert free["entity_id"] is None and free["entity_type"] is None  # a task needs no entity
    assert api.get(f"/api/v4/leads/{lead['id']}").json()["closest_task_at"] == DUE
    assert api.get("/api/v4/tasks/1").status_code == 204


def test_list_filters_order_and_paging(api: Api, emu: EmulatorHandle) -> None:
    assert api.get("/api/v4/tasks").status_code == 204
    leads = api.create("leads", [{"name": "a"}, {"name": "b"}])
    [person] = api.create("contacts", [{"name": "p"}])
    a, b, meet, contact_task = [
        t["id"]
        for t in created(
            api,
            [
                task(leads[0]["id"], complete_till=DUE + 300),
                task(leads[1]["id"], complete_till=DUE + 100, responsible_user_id=504144),
                task(leads[0]["id"], "Meet", complete_till=DUE + 200, task_type_id=2),
                {"text": "c", "complete_till": DUE, "entity_type": "contacts", "entity_id": person["id"]},
            ],
        )
    ]
    emu.control.advance(100)
    assert api.patch(f"/api/v4/tasks/{b}", {"is_completed": True}).status_code == 200
    stamp = api.get(f"/api/v4/tasks/{b}").json()["updated_at"]
    assert listed(api) == [a, b, meet, contact_task]
    assert listed(api, [("filter[id][]", meet), ("filter[id][]", a)]) == [a, meet]
    assert listed(api, {"filter[responsible_user_id][]": 504144}) == [b]
    assert listed(api, {"filter[is_completed]": 1}) == [b]
    assert listed(api, {"filter[is_completed]": 0}) == [a, meet, contact_task]
    assert listed(api, {"filter[task_type][]": 2}) == [meet]
    assert listed(api, {"filter[task_type_id]": 2}) == [meet]  # the SDK's spelling
    assert listed(api, {"filter[entity_type]": "contacts"}) == [contact_task]
    assert listed(api, {"filter[entity_type]": "leads", "filter[entity_id][]": leads[0]["id"]}) == [a, meet]
    # without filter[entity_type] an entity id means nothing (the docs require both)
    assert listed(api, {"filter[entity_id][]": leads[0]["id"]}) == [a, b, meet, contact_task]
    assert listed(api, {"filter[created_by][]": 504141}) == [a, b, meet, contact_task]
    assert listed(api, {"filter[updated_at][from]": stamp}) == [b]
    assert listed(api, {"filter[updated_at]": stamp}) == [b]
    assert listed(api, {"filter[updated_at][to]": stamp - 50}) == [a, meet, contact_task]
    assert listed(api, {"order[complete_till]": "asc"}) == [contact_task, b, meet, a]
    assert listed(api, {"order[complete_till]": "desc"}) == [a, meet, b, contact_task]
    assert listed(api, {"order[id]": "desc"}) == [contact_task, meet, b, a]
    page = api.get("/api/v4/tasks", {"limit": 3}).json()
    assert len(page["_embedded"]["tasks"]) == 3 and "next" in page["_links"]
    assert listed(api, {"limit": 3, "page": 2}) == [contact_task]
    assert api.get("/api/v4/tasks", {"limit": 3, "page": 3}).status_code == 204
    assert api.get("/api/v4/tasks", {"limit": 251}).status_code == 400
    assert listed(api, {"filter[task_type][]": 2945101}) == []


def test_edit_and_complete(api: Api, emu: EmulatorHandle) -> None:
    leads = api.create("leads", [{"name": "a"}, {"name": "b"}])
    one, two = [
        t["id"] for t in created(api, [task(leads[0]["id"]), task(leads[1]["id"], complete_till=DUE + 50)])
    ]
    emu.control.advance(60)
    response = api.patch(
        "/api/v4/tasks",
        [
            {"id": one, "text": "Call again", "complete_till": DUE + 10, "request_id": "e1"},
            {"id": two, "task_type_id": 2},
        ],
    )
    assert response.status_code == 200
    items = response.json()["_embedded"]["tasks"]
    assert [t["request_id"] for t in items] == ["e1", "1"]
    assert set(items[0]) == {"id", "updated_at", "request_id", "_links"}
    edited = api.get(f"/api/v4/tasks/{one}").json()
    assert (edited["text"], edited["complete_till"]) == ("Call again", DUE + 10)
    assert (
        edited["updated_at"] >= edited["created_at"] + 60 and edited["updated_at"] == items[0]["updated_at"]
    )
    assert api.get(f"/api/v4/leads/{leads[0]['id']}").json()["closest_task_at"] == DUE + 10
    # complete with a result: the documented request
    done = api.patch(f"/api/v4/tasks/{one}", {"is_completed": True, "result": {"text": "Client renewed"}})
    assert done.status_code == 200 and set(done.json()) == {"id", "updated_at", "_links"}
    completed = api.get(f"/api/v4/tasks/{one}").json()
    assert completed["is_completed"] is True and completed["result"] == {"text": "Client renewed"}
    assert api.get(f"/api/v4/leads/{leads[0]['id']}").json()["closest_task_at"] is None
    # a result alone on a completed task edits it; on an open task it is refused
    assert api.patch(f"/api/v4/tasks/{one}", {"result": {"text": "Renewed for a year"}}).status_code == 200
    assert api.get(f"/api/v4/tasks/{one}").json()["result"] == {"text": "Renewed for a year"}
    refused = api.patch(f"/api/v4/tasks/{two}", {"result": {"text": "too early"}})
    assert validation_errors(refused) == {"result": "FieldNotExpected"}
    assert api.get(f"/api/v4/tasks/{two}").json()["result"] == []
    # completing without a result is allowed; so is reopening
    assert api.patch("/api/v4/tasks", [{"id": two, "is_completed": True}]).status_code == 200
    assert api.patch(f"/api/v4/tasks/{two}", {"is_completed": False}).status_code == 200
    assert api.get(f"/api/v4/leads/{leads[1]['id']}").json()["closest_task_at"] == DUE + 50
    # a task can move to another entity
    assert api.patch(f"/api/v4/tasks/{two}", {"entity_id": leads[0]["id"]}).status_code == 200
    assert api.get(f"/api/v4/leads/{leads[1]['id']}").json()["closest_task_at"] is None
    assert api.get(f"/api/v4/leads/{leads[0]['id']}").json()["closest_task_at"] == DUE + 50
    # created completed, with its result
    [closed] = created(api, [task(leads[0]["id"], is_completed=True, result={"text": "done at once"})])
    assert api.get(f"/api/v4/tasks/{closed['id']}").json()["result"] == {"text": "done at once"}


def test_create_validation(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    emu.control.deactivate_user(504147)
    response = api.post(
        "/api/v4/tasks",
        [
            task(lead["id"], request_id="ok"),
            {"complete_till": DUE, "request_id": "no-text"},
            {"text": "", "complete_till": DUE, "request_id": "blank"},
            {"text": 5, "complete_till": DUE, "request_id": "text-type"},
            {"text": "x", "request_id": "no-deadline"},
            {"text": "x", "complete_till": "tomorrow", "request_id": "deadline-type"},
            task(1, request_id="unknown"),
            task(lead["id"], entity_type="customers", request_id="customers"),
            {"text": "x", "complete_till": DUE, "entity_id": lead["id"], "request_id": "no-type"},
            {"text": "x", "complete_till": DUE, "entity_type": "leads", "request_id": "no-id"},
            task(lead["id"], responsible_user_id=504147, request_id="deactivated"),
            task(lead["id"], responsible_user_id=1, request_id="unknown-user"),
            task(lead["id"], task_type_id=99, request_id="task-type"),
            task(lead["id"], priority=1, request_id="stray"),
            task(lead["id"], result={"text": "x"}, request_id="early-result"),
            task(lead["id"], result="x", is_completed=True, request_id="result-type"),
            task(lead["id"], is_completed="yes", request_id="flag"),
            task(lead["id"], duration=-5, request_id="duration"),
            task(lead["id"], request_id=7),
        ],
    )
    by_item = validation_errors_by_item(response)
    assert by_item == {
        "no-text": {"text": "NotBlank"},
        "blank": {"text": "NotBlank"},
        "text-type": {"text": "InvalidType"},
        "no-deadline": {"complete_till": "NotBlank"},
        "deadline-type": {"complete_till": "InvalidType"},
        "unknown": {"entity_id": "NotSupportedChoice"},
        "customers": {"entity_type": "NotSupportedChoice"},
        "no-type": {"entity_type": "NotBlank"},
        "no-id": {"entity_id": "NotBlank"},
        "deactivated": {"responsible_user_id": "NotSupportedChoice"},
        "unknown-user": {"responsible_user_id": "NotSupportedChoice"},
        "task-type": {"task_type_id": "NotSupportedChoice"},
        "stray": {"priority": "FieldNotExpected"},
        "early-result": {"result": "FieldNotExpected"},
        "result-type": {"result": "InvalidType"},
        "flag": {"is_completed": "InvalidType"},
        "duration": {"duration": "NotSupportedChoice"},
        "18": {"request_id": "InvalidType"},
    }
    assert emu.control.state()["tasks"] == []
    too_many = api.post("/api/v4/tasks", [task(lead["id"]) for _ in range(251)])
    assert validation_errors(too_many) == {"": "TooManyElements"}
    assert api.post("/api/v4/tasks", task(lead["id"])).status_code == 400  # an object, not an array


def test_patch_validation_and_missing_targets(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    [made] = created(api, [task(lead["id"])])
    assert validation_errors(api.patch("/api/v4/tasks", [{"text": "no id"}])) == {"id": "NotBlank"}
    assert validation_errors(api.patch("/api/v4/tasks", [{"id": 1, "text": "x"}])) == {"id": "NotFound"}
    assert validation_errors(api.patch(f"/api/v4/tasks/{made['id']}", {"text": ""})) == {"text": "NotBlank"}
    assert validation_errors(api.patch(f"/api/v4/tasks/{made['id']}", {"complete_till": None})) == {
        "complete_till": "InvalidType"
    }
    assert api.patch(f"/api/v4/tasks/{made['id']}", [{"text": "array"}]).status_code == 400
    # a batch with one bad item writes nothing
    response = api.patch("/api/v4/tasks", [{"id": made["id"], "text": "changed"}, {"id": 1}])
    assert response.status_code == 400
    assert api.get(f"/api/v4/tasks/{made['id']}").json()["text"] == "Call about the renewal"
    emu.control.set_deleted_patch_mode("errors")
    response = api.patch("/api/v4/tasks", [{"id": 1, "text": "x"}])
    assert response.status_code == 400 and response.json()["errors"] == {"1": "Entity not found"}


def test_tasks_deleted_in_the_ui_or_of_deleted_entities_are_gone(api: Api, emu: EmulatorHandle) -> None:
    [kept, gone] = api.create("leads", [{"name": "kept"}, {"name": "gone"}])
    made = [t["id"] for t in created(api, [task(kept["id"]), task(gone["id"]), task(kept["id"], "second")])]
    emu.control.delete_entity("leads", gone["id"])
    assert listed(api) == [made[0], made[2]]
    assert api.get(f"/api/v4/tasks/{made[1]}").status_code == 204
    assert validation_errors(api.patch(f"/api/v4/tasks/{made[1]}", {"is_completed": True})) == {
        "id": "NotFound"
    }
    emu.control.delete_entity("tasks", made[0])
    assert listed(api) == [made[2]]
    assert validation_errors(api.patch(f"/api/v4/tasks/{made[0]}", {"text": "x"})) == {"id": "NotFound"}
    assert validation_errors(api.post("/api/v4/tasks", [task(gone["id"])])) == {
        "entity_id": "NotSupportedChoice"
    }
    emu.control.set_deleted_patch_mode("ignore")  # the silent variant: 200, nothing changes
    assert api.patch(f"/api/v4/tasks/{made[0]}", {"text": "ignored"}).status_code == 200
    assert [t for t in emu.control.state()["tasks"] if t["id"] == made[0]][0][
        "text"
    ] == "Call about the renewal"


def test_task_types_in_the_account_state_and_reset(api: Api, emu: EmulatorHandle) -> None:
    account = api.get("/api/v4/account", {"with": "task_types,users_groups"}).json()
    types = account["_embedded"]["task_types"]
    assert [(t["id"], t["code"]) for t in types][:2] == [(1, "FOLLOW_UP"), (2, "MEETING")]
    assert set(types[0]) == {"id", "name", "color", "icon_id", "code"}
    assert account["_embedded"]["users_groups"][0]["id"] == 0
    assert "_embedded" not in api.get("/api/v4/account").json()
    [lead] = api.create("leads", [{"name": "L"}])
    [made] = created(api, [task(lead["id"], task_type_id=types[2]["id"])])
    [stored] = emu.control.state()["tasks"]
    assert stored["id"] == made["id"] and stored["task_type_id"] == types[2]["id"]
    emu.control.add_fault("status", path="^/api/v4/tasks$", method="POST", status=503, count=1)
    assert api.post("/api/v4/tasks", [task(lead["id"])]).status_code == 503
    assert len(emu.control.state()["tasks"]) == 1  # a failure before the write writes nothing
    emu.control.reset()
    assert emu.control.state()["tasks"] == []
