"""Strict validation: the real 400 shapes, and a 400 writes nothing."""

from __future__ import annotations

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api, validation_errors


def count(emu: EmulatorHandle, entity: str) -> int:
    return len(emu.control.state()["entities"][entity])


def test_unknown_field_and_enum_are_not_supported_choice(api: Api, emu: EmulatorHandle) -> None:
    select_id = api.field_id("contacts", "Поле контакта 2")  # a select field (see seed)
    response = api.post(
        "/api/v4/contacts",
        [
            {"name": "ok", "request_id": "good"},
            {
                "name": "bad",
                "request_id": "r1",
                "custom_fields_values": [
                    {"field_id": 1, "values": [{"value": "x"}]},
                    {"field_code": "PHONE", "values": [{"value": "+7", "enum_code": "NOPE"}]},
                    {"field_id": select_id, "values": [{"value": "not an option"}]},
                    {"field_code": "EMAIL", "values": [{"value": "a@b.c", "enum_id": 1}]},
                ],
            },
        ],
    )
    errors = validation_errors(response)
    assert errors == {
        "custom_fields_values.0.field_id": "NotSupportedChoice",
        "custom_fields_values.1.values.0.enum_code": "NotSupportedChoice",
        "custom_fields_values.2.values.0.value": "NotSupportedChoice",
        "custom_fields_values.3.values.0.enum_id": "NotSupportedChoice",
    }
    body = response.json()
    assert [item["request_id"] for item in body["validation-errors"]] == ["r1"]
    assert (
        body["validation-errors"][0]["errors"][0]["detail"] == "The value you selected is not a valid choice."
    )
    assert count(emu, "contacts") == 0  # the valid item was not written either


def test_stray_keys_are_field_not_expected(api: Api) -> None:
    position = api.field_id("contacts", "POSITION")
    response = api.post(
        "/api/v4/contacts",
        [
            {
                "name": "x",
                "bogus": 1,
                "custom_fields_values": [
                    {"field_id": position, "values": [{"value": "CEO", "enum_code": "WORK"}]},
                    {
                        "field_code": "PHONE",
                        "field_label": "Телефон",
                        "values": [{"value": "+7", "enum_code": "WORK"}],
                    },
                ],
            }
        ],
    )
    assert validation_errors(response) == {
        "bogus": "FieldNotExpected",
        "custom_fields_values.0.values.0.enum_code": "FieldNotExpected",
        "custom_fields_values.1.field_label": "FieldNotExpected",
    }


def test_field_name_and_field_type_beside_the_field_are_accepted_and_ignored(api: Api) -> None:
    """Real amoCRM answers 200 to the read shape's field_name/field_type (reference §5)."""
    position = api.field_id("contacts", "POSITION")
    [made] = api.create(
        "contacts",
        [
            {
                "name": "echoing client",
                "custom_fields_values": [
                    # wrong name and type on purpose: they are ignored, not checked
                    {
                        "field_id": position,
                        "field_name": "Anything",
                        "field_type": "numeric",
                        "values": [{"value": "CEO"}],
                    },
                    {
                        "field_code": "PHONE",
                        "field_name": "Телефон",
                        "field_type": "multitext",
                        "values": [{"value": "+79001112233", "enum_code": "WORK"}],
                    },
                ],
            }
        ],
    )
    values = {
        cf["field_id"]: cf for cf in api.get(f"/api/v4/contacts/{made['id']}").json()["custom_fields_values"]
    }
    assert values[position]["values"] == [{"value": "CEO"}]
    assert values[position]["field_name"] == "Должность" and values[position]["field_type"] == "text"
    phone = next(cf for cf in values.values() if cf["field_code"] == "PHONE")
    assert phone["values"][0]["value"] == "+79001112233"
    # alone they name no field: still refused as before
    response = api.post(
        "/api/v4/contacts",
        [{"name": "x", "custom_fields_values": [{"field_name": "Должность", "values": [{"value": "CEO"}]}]}],
    )
    assert validation_errors(response) == {"custom_fields_values.0.field_id": "NotSupportedChoice"}


def test_wrong_types_are_invalid_type(api: Api) -> None:
    checkbox = api.field_id("contacts", "Поле контакта 6")
    numeric = api.field_id("contacts", "Поле контакта 1")
    response = api.post(
        "/api/v4/leads", [{"name": 5, "price": "100", "responsible_user_id": "504141", "request_id": 7}]
    )
    assert validation_errors(response) == {
        "name": "InvalidType",
        "price": "InvalidType",
        "responsible_user_id": "InvalidType",
        "request_id": "InvalidType",
    }
    response = api.post(
        "/api/v4/contacts",
        [
            {
                "name": "x",
                "custom_fields_values": [
                    {"field_id": checkbox, "values": [{"value": "yes"}]},
                    {"field_id": numeric, "values": [{"value": "12a"}]},
                    {"field_code": "PHONE", "values": "+7900"},
                ],
            }
        ],
    )
    assert validation_errors(response) == {
        "custom_fields_values.0.values.0.value": "InvalidType",
        "custom_fields_values.1.values.0.value": "InvalidType",
        "custom_fields_values.2.values": "InvalidType",
    }


def test_multitext_needs_enum_and_select_accepts_enum_id(api: Api) -> None:
    response = api.post(
        "/api/v4/contacts",
        [{"name": "x", "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": "+7900"}]}]}],
    )
    assert validation_errors(response) == {"custom_fields_values.0.values.0.enum_code": "NotSupportedChoice"}
    fields = api.handle.control.state()["custom_fields"]["contacts"]
    select = next(f for f in fields if f["name"] == "Поле контакта 2")
    multi = next(f for f in fields if f["type"] == "multiselect")
    [made] = api.create(
        "contacts",
        [
            {
                "name": "ok",
                "custom_fields_values": [
                    {"field_id": select["id"], "values": [{"enum_id": select["enums"][1]["id"]}]},
                    {
                        "field_id": multi["id"],
                        "values": [
                            {"value": multi["enums"][0]["value"]},
                            {"enum_id": multi["enums"][2]["id"]},
                        ],
                    },
                    {"field_code": "POSITION", "values": [{"value": "CTO"}]},
                ],
            }
        ],
    )
    values = {
        cf["field_id"]: cf["values"]
        for cf in api.get(f"/api/v4/contacts/{made['id']}").json()["custom_fields_values"]
    }
    assert values[select["id"]][0]["value"] == select["enums"][1]["value"]
    assert [v["enum_id"] for v in values[multi["id"]]] == [multi["enums"][0]["id"], multi["enums"][2]["id"]]


def test_unknown_or_deactivated_user(api: Api, emu: EmulatorHandle) -> None:
    response = api.post("/api/v4/leads", [{"name": "x", "responsible_user_id": 1}])
    assert validation_errors(response) == {"responsible_user_id": "NotSupportedChoice"}
    [lead] = api.create("leads", [{"name": "owned", "responsible_user_id": 504144}])
    emu.control.deactivate_user(504144)
    response = api.post("/api/v4/leads", [{"name": "x", "responsible_user_id": 504144}])
    assert validation_errors(response) == {"responsible_user_id": "NotSupportedChoice"}
    # An entity still owned by the deactivated user cannot be patched without reassigning it (#220, #366).
    response = api.patch(f"/api/v4/leads/{lead['id']}", {"name": "renamed"})
    assert validation_errors(response) == {"responsible_user_id": "NotSupportedChoice"}
    assert (
        api.patch(
            f"/api/v4/leads/{lead['id']}", {"name": "renamed", "responsible_user_id": 504141}
        ).status_code
        == 200
    )


def test_deactivated_creator_blocks_patch(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "made by 504147", "created_by": 504147}])
    emu.control.deactivate_user(504147)
    response = api.patch(f"/api/v4/leads/{lead['id']}", {"name": "x"})
    assert validation_errors(response) == {"created_by": "NotSupportedChoice"}


def test_business_rules_use_errors_shape(api: Api, emu: EmulatorHandle) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    response = api.patch("/api/v4/leads", [{"id": lead["id"], "loss_reason_id": 8210101}])
    assert response.status_code == 400
    assert response.json() == {
        "errors": {str(lead["id"]): "Loss reason can be specified only for lost lead"},
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Invalid request body",
    }
    pipelines = api.get("/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    main, other = (next(p for p in pipelines if p["is_main"]), next(p for p in pipelines if not p["is_main"]))
    foreign = next(s["id"] for s in other["_embedded"]["statuses"] if s["type"] == 0)
    response = api.patch(f"/api/v4/leads/{lead['id']}", {"pipeline_id": main["id"], "status_id": foreign})
    assert response.status_code == 400 and str(lead["id"]) in response.json()["errors"]
    unsorted = next(s["id"] for s in main["_embedded"]["statuses"] if s["type"] == 1)
    response = api.post("/api/v4/leads", [{"name": "u", "pipeline_id": main["id"], "status_id": unsorted}])
    assert response.status_code == 400 and response.json()["detail"] == "Invalid request body"
    assert count(emu, "leads") == 1
    assert api.get(f"/api/v4/leads/{lead['id']}").json()["loss_reason_id"] is None


def test_patch_of_deleted_entity_modes(api: Api, emu: EmulatorHandle) -> None:
    made = api.create("contacts", [{"name": "a"}, {"name": "b"}])
    emu.control.delete_entity("contacts", made[0]["id"])
    batch = [{"id": made[0]["id"], "name": "A", "request_id": "ra"}, {"id": made[1]["id"], "name": "B"}]
    response = api.patch("/api/v4/contacts", batch)
    assert validation_errors(response) == {"id": "NotFound"}
    assert response.json()["validation-errors"][0]["request_id"] == "ra"
    assert api.get(f"/api/v4/contacts/{made[1]['id']}").json()["name"] == "b"  # nothing written
    emu.control.set_deleted_patch_mode("errors")
    response = api.patch("/api/v4/contacts", batch)
    assert response.status_code == 400 and list(response.json()["errors"]) == [str(made[0]["id"])]
    emu.control.set_deleted_patch_mode("ignore")
    response = api.patch("/api/v4/contacts", batch)
    assert response.status_code == 200
    assert api.get(f"/api/v4/contacts/{made[1]['id']}").json()["name"] == "B"
    assert api.get(f"/api/v4/contacts/{made[0]['id']}").status_code == 204


def test_patch_without_id_and_update_only_embedded(api: Api) -> None:
    [person] = api.create("contacts", [{"name": "p"}])
    [lead] = api.create("leads", [{"name": "l"}])
    assert validation_errors(api.patch("/api/v4/leads", [{"name": "no id"}])) == {"id": "NotBlank"}
    response = api.patch(f"/api/v4/leads/{lead['id']}", {"_embedded": {"contacts": [{"id": person["id"]}]}})
    assert validation_errors(response) == {"_embedded.contacts": "FieldNotExpected"}


def test_malformed_bodies(api: Api) -> None:
    bad_json = api.http.post(
        api.base + "/api/v4/contacts", data=b"{nope", timeout=10, headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.headers["Content-Type"] == "application/problem+json"
    assert api.post("/api/v4/contacts", {"name": "object, not array"}).status_code == 400
    assert api.patch("/api/v4/contacts/1", [{"name": "array, not object"}]).status_code == 400
