"""Custom fields (paged by 50), pipelines, account, users, links."""

from __future__ import annotations

import pytest

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api, validation_errors


def test_custom_fields_paged_by_50_with_totals(api: Api) -> None:
    first = api.get("/api/v4/contacts/custom_fields").json()
    total = first["_total_items"]
    assert total > 50 and first["_page_count"] == -(-total // 50)
    assert len(first["_embedded"]["custom_fields"]) == 50
    assert "next" in first["_links"] and "last" in first["_links"]
    seen = [f["id"] for f in first["_embedded"]["custom_fields"]]
    page = 2
    while True:
        response = api.get("/api/v4/contacts/custom_fields", {"page": page, "limit": 50})
        if response.status_code == 204:
            break
        body = response.json()
        seen += [f["id"] for f in body["_embedded"]["custom_fields"]]
        if "next" not in body["_links"]:
            break
        page += 1
    assert len(set(seen)) == total
    assert api.get("/api/v4/contacts/custom_fields", {"limit": 51}).status_code == 400
    phone = next(f for f in first["_embedded"]["custom_fields"] if f["code"] == "PHONE")
    assert [e["code"] for e in phone["enums"]] == ["WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"]
    email = next(f for f in first["_embedded"]["custom_fields"] if f["code"] == "EMAIL")
    assert [e["code"] for e in email["enums"]] == ["WORK", "PRIV", "OTHER"]
    companies = api.get("/api/v4/companies/custom_fields").json()["_embedded"]["custom_fields"]
    assert {"PHONE", "EMAIL", "WEB", "ADDRESS"} <= {f["code"] for f in companies}
    only_text = api.get("/api/v4/leads/custom_fields", {"filter[type][]": "text"}).json()
    assert {f["type"] for f in only_text["_embedded"]["custom_fields"]} == {"text"}


def test_custom_field_create_and_use(api: Api) -> None:
    response = api.post(
        "/api/v4/leads/custom_fields",
        [
            {"name": "BILLmanager ID", "type": "text", "request_id": "bm"},
            {"name": "Тариф", "type": "select", "enums": [{"value": "VPS-1"}, {"value": "VPS-2"}]},
        ],
    )
    assert response.status_code == 200
    created = response.json()["_embedded"]["custom_fields"]
    assert created[0]["request_id"] == "bm" and created[1]["enums"][1]["value"] == "VPS-2"
    [lead] = api.create(
        "leads",
        [
            {
                "name": "x",
                "custom_fields_values": [
                    {"field_id": created[0]["id"], "values": [{"value": "svc-1"}]},
                    {"field_id": created[1]["id"], "values": [{"value": "VPS-2"}]},
                ],
            }
        ],
    )
    found = api.get("/api/v4/leads", {"query": "svc-1"}).json()["_embedded"]["leads"]
    assert [x["id"] for x in found] == [lead["id"]]
    one = api.get(f"/api/v4/leads/custom_fields/{created[0]['id']}").json()
    assert one["name"] == "BILLmanager ID"
    assert validation_errors(
        api.post("/api/v4/leads/custom_fields", [{"name": "x", "type": "hologram"}])
    ) == {"0.type": "NotSupportedChoice"}


def test_pipelines_and_statuses(api: Api) -> None:
    body = api.get("/api/v4/leads/pipelines").json()
    pipelines = body["_embedded"]["pipelines"]
    assert body["_total_items"] == 2 and sum(p["is_main"] for p in pipelines) == 1
    unsorted_ids = set()
    for pipeline in pipelines:
        statuses = pipeline["_embedded"]["statuses"]
        kinds = [s for s in statuses if s["type"] == 1]
        assert len(kinds) == 1
        unsorted_ids.add(kinds[0]["id"])
        assert {142, 143} <= {s["id"] for s in statuses}
        assert len([s for s in statuses if s["type"] == 0 and s["id"] not in (142, 143)]) >= 2
        one = api.get(f"/api/v4/leads/pipelines/{pipeline['id']}").json()
        assert one["id"] == pipeline["id"]
        listed = api.get(f"/api/v4/leads/pipelines/{pipeline['id']}/statuses").json()["_embedded"]["statuses"]
        assert [s["id"] for s in listed] == [s["id"] for s in statuses]
        status = api.get(f"/api/v4/leads/pipelines/{pipeline['id']}/statuses/142").json()
        assert status["pipeline_id"] == pipeline["id"]
    assert len(unsorted_ids) == 2
    assert api.get("/api/v4/leads/pipelines/1").status_code == 204


def test_account_and_users(api: Api, emu: EmulatorHandle) -> None:
    account = api.get("/api/v4/account", {"with": "is_api_filter_enabled,datetime_settings"}).json()
    assert {"id", "name", "subdomain", "current_user_id", "currency"} <= account.keys()
    assert account["datetime_settings"]["timezone"] == "Europe/Moscow"
    users = api.get("/api/v4/users", {"limit": 2}).json()
    assert len(users["_embedded"]["users"]) == 2 and "next" in users["_links"]
    assert api.get("/api/v4/users", {"limit": 251}).status_code == 400
    me = api.get(f"/api/v4/users/{account['current_user_id']}").json()
    assert me["rights"]["is_admin"] is True and me["rights"]["is_active"] is True
    emu.control.deactivate_user(504147)
    assert api.get("/api/v4/users/504147").json()["rights"]["is_active"] is False
    assert api.get("/api/v4/users/1").status_code == 204


def test_links_single_and_mass(api: Api) -> None:
    people = api.create("contacts", [{"name": "p1"}, {"name": "p2"}])
    firms = api.create("companies", [{"name": "f1"}, {"name": "f2"}])
    [lead] = api.create("leads", [{"name": "l"}])
    p1, p2, f1, f2 = people[0]["id"], people[1]["id"], firms[0]["id"], firms[1]["id"]
    response = api.post(f"/api/v4/companies/{f1}/link", [{"to_entity_id": p1, "to_entity_type": "contacts"}])
    assert response.status_code == 200 and response.json()["_embedded"]["links"][0]["to_entity_id"] == p1
    # linking the contact to another company replaces the first: one company per contact
    api.post(f"/api/v4/contacts/{p1}/link", [{"to_entity_id": f2, "to_entity_type": "companies"}])
    assert [c["id"] for c in api.get(f"/api/v4/contacts/{p1}").json()["_embedded"]["companies"]] == [f2]
    assert api.get(f"/api/v4/companies/{f1}/links").status_code == 204
    mass = api.post(
        "/api/v4/leads/link",
        [
            {
                "entity_id": lead["id"],
                "to_entity_id": p1,
                "to_entity_type": "contacts",
                "metadata": {"is_main": True},
            },
            {"entity_id": lead["id"], "to_entity_id": p2, "to_entity_type": "contacts"},
            {"entity_id": lead["id"], "to_entity_id": f1, "to_entity_type": "companies"},
        ],
    )
    assert mass.status_code == 200 and mass.json()["_total_items"] == 3
    links = api.get(f"/api/v4/leads/{lead['id']}/links", {"filter[to_entity_type]": "contacts"}).json()
    assert {(x["to_entity_id"], x["metadata"]["is_main"]) for x in links["_embedded"]["links"]} == {
        (p1, True),
        (p2, False),
    }
    all_links = api.get("/api/v4/leads/links", [("filter[entity_id][]", lead["id"])]).json()
    assert all_links["_total_items"] == 3
    unlink = api.post(
        f"/api/v4/leads/{lead['id']}/unlink", [{"to_entity_id": p2, "to_entity_type": "contacts"}]
    )
    assert unlink.status_code == 204
    left = api.get(f"/api/v4/leads/{lead['id']}", {"with": "contacts"}).json()["_embedded"]["contacts"]
    assert [c["id"] for c in left] == [p1]
    bad = api.post(
        f"/api/v4/leads/{lead['id']}/link",
        [
            {"to_entity_id": 1, "to_entity_type": "contacts"},
            {"to_entity_id": p1, "to_entity_type": "customers"},
        ],
    )
    assert validation_errors(bad) == {
        "0.to_entity_id": "NotSupportedChoice",
        "1.to_entity_type": "NotSupportedChoice",
    }


def test_a_relation_to_an_entity_deleted_in_the_ui_can_be_unlinked_but_not_made(
        api: Api, emu: EmulatorHandle) -> None:
    [person, other] = api.create("contacts", [{"name": "p"}, {"name": "q"}])
    [lead] = api.create("leads", [{"name": "l"}])
    link = {"entity_id": lead["id"], "to_entity_id": person["id"], "to_entity_type": "contacts"}
    assert api.post("/api/v4/leads/link", [link]).status_code == 200
    emu.control.delete_entity("contacts", person["id"])
    # hidden from reads, still held: the relation to the deleted contact can be removed
    assert not api.get(f"/api/v4/leads/{lead['id']}", {"with": "contacts"}).json()["_embedded"]["contacts"]
    assert any(e["to_entity_id"] == person["id"] for e in emu.control.state()["links"])
    assert api.post("/api/v4/leads/unlink", [link]).status_code == 204
    assert not any(e["to_entity_id"] == person["id"] for e in emu.control.state()["links"])
    # a relation that does not exist still needs both ends alive, to link or to unlink
    refused = {"0.to_entity_id": "NotSupportedChoice"}
    assert validation_errors(api.post("/api/v4/leads/unlink", [link])) == refused
    assert validation_errors(api.post("/api/v4/leads/link", [link])) == refused
    assert api.post("/api/v4/leads/unlink", [dict(link, to_entity_id=other["id"])]).status_code == 204


def test_a_custom_field_can_be_made_api_only_and_then_a_hand_edit_is_refused(
        api: Api, emu: EmulatorHandle) -> None:
    made = api.post("/api/v4/contacts/custom_fields", [{"name": "Marker", "type": "text"}]).json()
    field = made["_embedded"]["custom_fields"][0]
    [person] = api.create("contacts", [{"name": "p"}])
    emu.control.edit_by_hand("contacts", person["id"], field["id"], "by hand")
    record = next(r for r in emu.control.entities("contacts") if r["id"] == person["id"])
    assert record["custom_fields_values"][0]["values"] == [{"value": "by hand"}]
    batch = api.patch("/api/v4/contacts/custom_fields", [{"id": field["id"], "is_api_only": True}])
    assert batch.status_code == 200 and batch.json()["_embedded"]["custom_fields"][0]["is_api_only"] is True
    with pytest.raises(RuntimeError, match="403.*API only"):
        emu.control.edit_by_hand("contacts", person["id"], field["id"], "again by hand")
    one = api.patch(f"/api/v4/contacts/custom_fields/{field['id']}",
                    {"name": "Marker 2", "is_api_only": False})
    assert one.status_code == 200 and (one.json()["name"], one.json()["is_api_only"]) == ("Marker 2", False)
    bad = api.patch("/api/v4/contacts/custom_fields",
                    [{"id": 1, "type": "numeric"}, {"id": field["id"], "is_api_only": "yes"}])
    assert validation_errors(bad) == {"0.id": "NotSupportedChoice", "0.type": "FieldNotExpected",
                                      "1.is_api_only": "InvalidType"}


def test_fields_pipelines_and_statuses_deleted_in_the_ui(api: Api, emu: EmulatorHandle) -> None:
    fields = api.get("/api/v4/leads/custom_fields").json()["_embedded"]["custom_fields"]
    tariff = next(f for f in fields if f["name"] == "Тариф")
    [lead] = api.create("leads", [{"name": "L", "custom_fields_values": [
        {"field_id": tariff["id"], "values": [{"value": "VDS"}]}]}])
    emu.control.delete_custom_field("leads", tariff["id"])
    left = api.get("/api/v4/leads/custom_fields").json()["_embedded"]["custom_fields"]
    assert tariff["id"] not in {f["id"] for f in left}
    assert api.get(f"/api/v4/leads/{lead['id']}").json()["custom_fields_values"] is None
    refused = api.patch(f"/api/v4/leads/{lead['id']}", {"custom_fields_values": [
        {"field_id": tariff["id"], "values": [{"value": "VDS"}]}]})
    assert refused.status_code == 400
    contacts = api.get("/api/v4/contacts/custom_fields").json()["_embedded"]["custom_fields"]
    phone = next(f for f in contacts if f["code"] == "PHONE")
    with pytest.raises(RuntimeError):
        emu.control.delete_custom_field("contacts", phone["id"])    # predefined: not deletable
    pipelines = api.get("/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    main, other = (next(p for p in pipelines if p["is_main"]), next(p for p in pipelines if not p["is_main"]))
    stage = next(s for s in main["_embedded"]["statuses"] if s["is_editable"])
    emu.control.delete_status(main["id"], stage["id"])
    emu.control.delete_pipeline(other["id"])
    with pytest.raises(RuntimeError):
        emu.control.delete_pipeline(main["id"])                       # the main pipeline stays
    pipelines = api.get("/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    assert [p["id"] for p in pipelines] == [main["id"]]
    assert stage["id"] not in {s["id"] for s in pipelines[0]["_embedded"]["statuses"]}
    assert api.patch(f"/api/v4/leads/{lead['id']}",
                     {"pipeline_id": main["id"], "status_id": stage["id"]}).status_code == 400
