"""Contacts, companies, leads: create, read, list, filters, paging, PATCH, tags."""

from __future__ import annotations

from typing import Any, Dict
from urllib.parse import parse_qs, urlsplit

from tests.amocrm_emulator import EmulatorHandle
from tests.emulator.conftest import Api, validation_errors


def contact(name: str, phone: str = "+79001234567", **extra: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "name": name,
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]},
            {
                "field_code": "EMAIL",
                "values": [{"value": f"{name.lower()}@example.com", "enum_code": "WORK"}],
            },
        ],
    }
    body.update(extra)
    return body


def test_create_echoes_request_id_ignores_id_and_headers(api: Api) -> None:
    response = api.post(
        "/api/v4/contacts", [contact("Ivan", request_id="client-42", id=5), contact("Petr", id=5)]
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/hal+json"
    assert response.headers["X-Request-Id"]
    created = response.json()["_embedded"]["contacts"]
    assert [c["request_id"] for c in created] == ["client-42", "1"]
    assert created[0]["id"] != 5 and created[1]["id"] != created[0]["id"]  # `id` in POST ignored
    assert created[0]["is_deleted"] is False and created[0]["_links"]["self"]["href"].endswith(
        f"/api/v4/contacts/{created[0]['id']}"
    )


def test_get_by_id_read_shape_and_204_for_missing(api: Api, emu: EmulatorHandle) -> None:
    [made] = api.create(
        "contacts", [contact("Anna", first_name="Anna", last_name="K", tags_to_add=[{"name": "billmanager"}])]
    )
    body = api.get(f"/api/v4/contacts/{made['id']}").json()
    assert body["name"] == "Anna" and body["first_name"] == "Anna" and body["account_id"]
    phone = next(cf for cf in body["custom_fields_values"] if cf["field_code"] == "PHONE")
    assert phone["field_type"] == "multitext" and phone["values"][0]["enum_code"] == "WORK"
    assert phone["values"][0]["enum_id"]
    assert [t["name"] for t in body["_embedded"]["tags"]] == ["billmanager"]
    assert body["_embedded"]["companies"] == []
    missing = api.get("/api/v4/contacts/1")
    assert missing.status_code == 204 and missing.content == b"" and missing.headers["X-Request-Id"]
    emu.control.delete_entity("contacts", made["id"])
    assert api.get(f"/api/v4/contacts/{made['id']}").status_code == 204


def test_list_paging_links_and_empty_204(api: Api) -> None:
    assert api.get("/api/v4/companies").status_code == 204
    api.create("companies", [{"name": f"Co {n}"} for n in range(5)])
    page1 = api.get("/api/v4/companies", {"limit": 2, "with": "contacts"}).json()
    assert page1["_page"] == 1 and len(page1["_embedded"]["companies"]) == 2
    nxt = urlsplit(page1["_links"]["next"]["href"])
    assert parse_qs(nxt.query)["with"] == ["contacts"] and parse_qs(nxt.query)["page"] == ["2"]
    page3 = api.get("/api/v4/companies", {"limit": 2, "page": 3}).json()
    assert len(page3["_embedded"]["companies"]) == 1 and "next" not in page3["_links"]
    assert api.get("/api/v4/companies", {"limit": 2, "page": 4}).status_code == 204
    assert api.get("/api/v4/companies", {"limit": 251}).status_code == 400
    assert len(api.get("/api/v4/companies", {"limit": 250}).json()["_embedded"]["companies"]) == 5


def test_filters_order_and_query(api: Api, emu: EmulatorHandle) -> None:
    made = api.create(
        "contacts",
        [contact("Alpha", "+70000000001"), contact("Beta", "+70000000002"), contact("Gamma", "+70000000003")],
    )
    ids = [c["id"] for c in made]
    by_id = api.get("/api/v4/contacts", [("filter[id][]", ids[0]), ("filter[id][]", ids[2])]).json()
    assert [c["id"] for c in by_id["_embedded"]["contacts"]] == [ids[0], ids[2]]
    single = api.get("/api/v4/contacts", {"filter[id]": ids[1]}).json()
    assert [c["id"] for c in single["_embedded"]["contacts"]] == [ids[1]]
    desc = api.get("/api/v4/contacts", {"order[id]": "desc"}).json()
    assert [c["id"] for c in desc["_embedded"]["contacts"]] == ids[::-1]
    found = api.get("/api/v4/contacts", {"query": "+70000000002"}).json()
    assert [c["id"] for c in found["_embedded"]["contacts"]] == [ids[1]]
    assert api.get("/api/v4/contacts", {"query": "gamma"}).json()["_embedded"]["contacts"][0]["id"] == ids[2]
    assert api.get("/api/v4/contacts", {"query": "nobody"}).status_code == 204
    emu.control.advance(100)
    api.patch(f"/api/v4/contacts/{ids[0]}", {"name": "Alpha 2"})
    now = int(emu.control.now())
    recent = api.get("/api/v4/contacts", {"filter[updated_at][from]": now - 10}).json()
    assert [c["id"] for c in recent["_embedded"]["contacts"]] == [ids[0]]
    old = api.get(
        "/api/v4/contacts", {"filter[created_at][to]": now - 50, "order[updated_at]": "desc"}
    ).json()
    assert [c["id"] for c in old["_embedded"]["contacts"]][0] == ids[0]
    assert len(old["_embedded"]["contacts"]) == 3


def test_batch_and_single_patch(api: Api, emu: EmulatorHandle) -> None:
    made = api.create("contacts", [contact("One"), contact("Two")])
    emu.control.advance(60)
    response = api.patch(
        "/api/v4/contacts",
        [
            {"id": made[0]["id"], "name": "One!"},
            {
                "id": made[1]["id"],
                "request_id": "r2",
                "custom_fields_values": [
                    {"field_code": "PHONE", "values": [{"value": "+71111111111", "enum_code": "MOB"}]}
                ],
            },
        ],
    )
    assert response.status_code == 200
    items = response.json()["_embedded"]["contacts"]
    assert items[1]["request_id"] == "r2"
    created_at = api.get(f"/api/v4/contacts/{made[0]['id']}").json()["created_at"]
    assert items[0]["updated_at"] >= created_at + 60
    two = api.get(f"/api/v4/contacts/{made[1]['id']}").json()
    phones = next(cf for cf in two["custom_fields_values"] if cf["field_code"] == "PHONE")["values"]
    assert phones == [{"value": "+71111111111", "enum_id": phones[0]["enum_id"], "enum_code": "MOB"}]
    assert any(cf["field_code"] == "EMAIL" for cf in two["custom_fields_values"])  # other fields kept
    single = api.patch(f"/api/v4/contacts/{made[0]['id']}", {"name": "Single"})
    assert (
        single.status_code == 200 and single.json()["id"] == made[0]["id"] and "updated_at" in single.json()
    )
    assert api.get(f"/api/v4/contacts/{made[0]['id']}").json()["name"] == "Single"
    cleared = api.patch(
        f"/api/v4/contacts/{made[0]['id']}",
        {
            "custom_fields_values": [
                {"field_code": "PHONE", "values": None},
                {"field_code": "EMAIL", "values": None},
            ]
        },
    )
    assert cleared.status_code == 200
    assert api.get(f"/api/v4/contacts/{made[0]['id']}").json()["custom_fields_values"] is None


def test_post_to_entity_id_is_405(api: Api) -> None:
    [made] = api.create("contacts", [contact("X")])
    response = api.post(f"/api/v4/contacts/{made['id']}", [contact("X")])
    assert response.status_code == 405


def test_batch_limit_250(api: Api) -> None:
    response = api.post("/api/v4/companies", [{"name": f"c{n}"} for n in range(251)])
    assert response.status_code == 400
    assert len(api.create("companies", [{"name": f"c{n}"} for n in range(250)])) == 250


def test_tags_replace_incremental_and_clear(api: Api) -> None:
    [lead] = api.create("leads", [{"name": "L", "_embedded": {"tags": [{"name": "a"}, {"name": "b"}]}}])
    path = f"/api/v4/leads/{lead['id']}"

    def names() -> list:
        return sorted(t["name"] for t in api.get(path).json()["_embedded"]["tags"])

    assert names() == ["a", "b"]
    api.patch(path, {"tags_to_add": [{"name": "c"}], "tags_to_delete": [{"name": "a"}]})
    assert names() == ["b", "c"]
    api.patch(path, {"_embedded": {"tags": [{"name": "z"}]}, "tags_to_add": [{"name": "ignored"}]})
    assert names() == ["z"]
    api.patch(path, {"_embedded": {"tags": None}})
    assert names() == []
    api.patch(path, {"tags_to_add": [{"name": "q"}]})
    api.patch(path, {"_embedded": {"tags": []}})
    assert names() == []
    catalog = api.get("/api/v4/leads/tags").json()["_embedded"]["tags"]
    assert {"a", "b", "c", "z", "q"} == {t["name"] for t in catalog}  # "ignored" was never created
    assert api.get("/api/v4/contacts/tags").status_code == 204  # per entity type


def test_tag_catalog_post_and_filters(api: Api) -> None:
    response = api.post("/api/v4/contacts/tags", [{"name": "vip", "request_id": "t1"}, {"name": "new"}])
    assert response.status_code == 200
    tags = response.json()["_embedded"]["tags"]
    assert tags[0]["request_id"] == "t1" and tags[0]["id"]
    assert set(tags[0]) == {"id", "name", "request_id"}  # the create answer has no color (reference §6)
    again = api.post("/api/v4/contacts/tags", [{"name": "vip"}]).json()["_embedded"]["tags"][0]
    assert again["id"] == tags[0]["id"]
    found = api.get("/api/v4/contacts/tags", {"filter[name]": "vip"}).json()["_embedded"]["tags"]
    assert [t["id"] for t in found] == [tags[0]["id"]]
    [made] = api.create("contacts", [{"name": "T", "_embedded": {"tags": [{"id": tags[1]["id"]}]}}])
    assert api.get(f"/api/v4/contacts/{made['id']}").json()["_embedded"]["tags"][0]["name"] == "new"


def test_leads_defaults_embedded_links_and_with(api: Api) -> None:
    [person] = api.create("contacts", [contact("Owner")])
    [firm] = api.create("companies", [{"name": "Firm"}])
    [lead] = api.create(
        "leads",
        [
            {
                "name": "VPS #1",
                "price": 1500,
                "request_id": "svc-1",
                "_embedded": {
                    "contacts": [{"id": person["id"], "is_main": True}],
                    "companies": [{"id": firm["id"]}],
                },
            }
        ],
    )
    assert lead["request_id"] == "svc-1"
    body = api.get(f"/api/v4/leads/{lead['id']}", {"with": "contacts"}).json()
    pipelines = api.get("/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    main = next(p for p in pipelines if p["is_main"])
    first_working = next(s["id"] for s in main["_embedded"]["statuses"] if s["type"] == 0)
    assert body["pipeline_id"] == main["id"] and body["status_id"] == first_working
    assert body["price"] == 1500
    assert (
        body["_embedded"]["contacts"][0]["id"] == person["id"] and body["_embedded"]["contacts"][0]["is_main"]
    )
    assert body["_embedded"]["companies"][0]["id"] == firm["id"]
    contact_view = api.get(f"/api/v4/contacts/{person['id']}", {"with": "leads"}).json()
    assert contact_view["_embedded"]["leads"][0]["id"] == lead["id"]
    company_view = api.get(f"/api/v4/companies/{firm['id']}", {"with": "leads,contacts"}).json()
    assert company_view["_embedded"]["leads"][0]["id"] == lead["id"]


def test_price_null_means_no_budget_and_reads_as_zero(api: Api) -> None:
    [lead] = api.create("leads", [{"name": "No cost"}])
    path = f"/api/v4/leads/{lead['id']}"
    assert api.get(path).json()["price"] == 0            # created without a price: no budget
    assert api.patch(path, {"price": 1500}).status_code == 200
    assert api.get(path).json()["price"] == 1500
    assert api.patch(path, {"price": None}).status_code == 200
    assert api.get(path).json()["price"] == 0
    [made] = api.create("leads", [{"name": "Null price", "price": None}])
    assert api.get(f"/api/v4/leads/{made['id']}").json()["price"] == 0
    assert api.patch(path, {"price": "100"}).status_code == 400   # still an int, or null


def test_lead_status_moves_and_closed_at(api: Api) -> None:
    [lead] = api.create("leads", [{"name": "L"}])
    path = f"/api/v4/leads/{lead['id']}"
    pipelines = api.get("/api/v4/leads/pipelines").json()["_embedded"]["pipelines"]
    other = next(p for p in pipelines if not p["is_main"])
    working = [
        s["id"] for s in other["_embedded"]["statuses"] if s["type"] == 0 and s["id"] not in (142, 143)
    ]
    assert api.patch(path, {"pipeline_id": other["id"], "status_id": working[1]}).status_code == 200
    assert api.get(path).json()["status_id"] == working[1]
    assert (
        api.patch(path, {"status_id": 143, "pipeline_id": other["id"], "loss_reason_id": 8210101}).status_code
        == 200
    )
    closed = api.get(path, {"with": "loss_reason"}).json()
    assert closed["closed_at"] and closed["loss_reason_id"] == 8210101
    assert closed["_embedded"]["loss_reason"][0]["id"] == 8210101


def test_only_deleted_and_deleted_excluded_from_lists(api: Api, emu: EmulatorHandle) -> None:
    made = api.create("leads", [{"name": "keep"}, {"name": "gone"}])
    emu.control.delete_entity("leads", made[1]["id"])
    live = api.get("/api/v4/leads").json()["_embedded"]["leads"]
    assert [x["id"] for x in live] == [made[0]["id"]]
    deleted = api.get("/api/v4/leads", {"with": "only_deleted"}).json()["_embedded"]["leads"]
    assert [x["id"] for x in deleted] == [made[1]["id"]] and deleted[0]["is_deleted"] is True
    assert set(deleted[0]) == {"id", "updated_at", "is_deleted"}  # restorable leads, reference §3
    [person, gone_person] = api.create("contacts", [{"name": "p"}, {"name": "gone"}])
    emu.control.delete_entity("contacts", gone_person["id"])
    others = api.get("/api/v4/contacts", {"with": "only_deleted"}).json()["_embedded"]["contacts"]
    assert [x["id"] for x in others] == [person["id"]]  # only leads know with=only_deleted
    state = emu.control.state()["entities"]["leads"]
    assert {x["id"]: x["is_deleted"] for x in state} == {made[0]["id"]: False, made[1]["id"]: True}


def test_complex_creates_lead_contact_company(api: Api) -> None:
    response = api.post(
        "/api/v4/leads/complex",
        [
            {
                "name": "Complex",
                "request_id": "cx1",
                "_embedded": {"contacts": [contact("Complex person")], "companies": [{"name": "Complex Co"}]},
            }
        ],
    )
    assert response.status_code == 200
    [item] = response.json()
    assert item["request_id"] == ["cx1"] and item["merged"] is False
    person = api.get(f"/api/v4/contacts/{item['contact_id']}").json()
    assert person["_embedded"]["companies"][0]["id"] == item["company_id"]
    assert api.post("/api/v4/leads/complex", [{"name": f"x{n}"} for n in range(51)]).status_code == 400
    position = {"field_code": "POSITION", "values": [{"value": "CEO"}]}

    def with_values(count: int) -> Any:
        person = {"name": "many", "custom_fields_values": [position] * count}
        return api.post("/api/v4/leads/complex", [{"name": "L", "_embedded": {"contacts": [person]}}])

    assert validation_errors(with_values(41)) == {
        "_embedded.contacts.0.custom_fields_values": "TooManyElements"
    }
    assert with_values(40).status_code == 200  # at most 40 custom-field values per entity (reference §4.1)
