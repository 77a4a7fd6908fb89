"""The AmoApi operations against the emulator: catalogs, reads, links, tags, markers."""

from __future__ import annotations

from typing import Any, Dict

from .conftest import Setup


def test_custom_field_catalog_is_read_past_the_first_page_of_50(setup: Setup) -> None:
    client = setup.client()
    fields = client.custom_fields("contacts")
    assert len(fields) > 50
    assert len({f["id"] for f in fields}) == len(fields)
    pages = [r for r in setup.api_requests() if r["path"] == "/api/v4/contacts/custom_fields"]
    assert all(r["query"].get("limit") in (["50"], "50") for r in pages) and len(pages) >= 2
    made = client.create_custom_fields("leads", [{"name": "BILLmanager ID", "type": "text"}])
    assert made[0]["id"] in {f["id"] for f in client.custom_fields("leads")}


def test_pipelines_users_and_account(setup: Setup) -> None:
    client = setup.client()
    pipelines = client.pipelines()
    assert {p["id"] for p in pipelines} == {3177727, 3177730}
    statuses = {s["id"] for s in pipelines[0]["_embedded"]["statuses"]}
    assert {142, 143} <= statuses
    assert len(client.users()) == 3 and client.account()["subdomain"]


def test_get_links_and_incremental_tags(setup: Setup) -> None:
    client = setup.client()
    contact_id = client.create("contacts", [{"name": "Ivan", "request_id": "contact-1"}]).ids["contact-1"]
    company_id = client.create("companies", [{"name": "OOO Romashka",
                                              "request_id": "company-1"}]).ids["company-1"]
    lead_id = client.create("leads", [{"name": "VPS #1", "request_id": "lead-1",
                                       "tags_to_add": [{"name": "vps"}, {"name": "new"}]}]).ids["lead-1"]
    client.link("contacts", [{"entity_id": contact_id, "to_entity_id": company_id,
                              "to_entity_type": "companies"}])
    client.link("leads", [{"entity_id": lead_id, "to_entity_id": contact_id, "to_entity_type": "contacts",
                           "metadata": {"is_main": True}},
                          {"entity_id": lead_id, "to_entity_id": company_id, "to_entity_type": "companies"}])
    tags = {"tags_to_add": [{"name": "paid"}], "tags_to_delete": [{"name": "new"}]}
    outcome = client.update("leads", [{"id": lead_id, "request_id": "lead-1", **tags}])
    assert dict(outcome.ids) == {"lead-1": lead_id}
    lead = client.get("leads", [lead_id, 999], with_=["contacts"])
    assert list(lead) == [lead_id]
    embedded: Dict[str, Any] = lead[lead_id]["_embedded"]
    assert sorted(t["name"] for t in embedded["tags"]) == ["paid", "vps"]
    assert [c["id"] for c in embedded["contacts"]] == [contact_id]
    assert [c["id"] for c in embedded["companies"]] == [company_id]
    assert client.get("contacts", [contact_id])[contact_id]["_embedded"]["companies"][0]["id"] == company_id
    unlinked = [{"entity_id": company_id, "to_entity_id": contact_id, "to_entity_type": "contacts"},
                {"entity_id": company_id, "to_entity_id": lead_id, "to_entity_type": "leads"}]
    client.unlink("companies", unlinked)
    client.unlink("companies", unlinked)          # unlinking what is not linked is no error
    assert not client.get("contacts", [contact_id])[contact_id]["_embedded"]["companies"]
    assert not client.get("leads", [lead_id])[lead_id]["_embedded"]["companies"]
    unlinks = [r for r in setup.api_requests() if r["path"] == "/api/v4/companies/unlink"]
    assert [r["status"] for r in unlinks] == [204, 204]


def test_find_by_marker_does_not_trust_the_lagging_search_index(setup: Setup) -> None:
    client = setup.client()
    field_id = client.create_custom_fields("contacts", [{"name": "BILLmanager ID", "type": "text"}])[0]["id"]

    def item(n: int, marker: str) -> Dict[str, Any]:
        return {"name": f"c{n}", "request_id": f"contact-{n}",
                "custom_fields_values": [{"field_id": field_id, "values": [{"value": marker}]}]}

    old = client.create("contacts", [item(0, "billmgr:contact:1")]).ids
    setup.emu.control.set_search_lag(3600)
    since = int(setup.emu.control.now()) - 1
    new = client.create("contacts", [item(1, "billmgr:contact:2"), item(2, "billmgr:contact:22")]).ids
    wanted = ["billmgr:contact:2", "billmgr:contact:3"]
    assert client.find_by_marker("contacts", field_id, wanted) == {}      # the index has not caught up
    found = client.find_by_marker("contacts", field_id, wanted, created_since=since)
    assert found == {"billmgr:contact:2": new["contact-1"]}               # exact match, not "...:22"
    setup.emu.control.advance(3601)                                       # the index catches up
    assert client.find_by_marker("contacts", field_id, ["billmgr:contact:1"]) == {
        "billmgr:contact:1": old["contact-0"]}
    assert client.find_by_marker("contacts", field_id, ["billmgr:contact:2"]) == {   # exact, not ":22"
        "billmgr:contact:2": new["contact-1"]}
