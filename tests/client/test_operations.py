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
    new = client.create("contacts", [item(1, "billmgr:contact:2 bmsync-a1"),
                                      item(2, "billmgr:contact:22 bmsync-a1")]).ids
    wanted = ["billmgr:contact:2", "billmgr:contact:3"]
    lagging = client.find_by_marker("contacts", field_id, wanted, token="a1")
    assert lagging.found == {} and not lagging.complete                  # the index has not caught up
    found = client.find_by_marker("contacts", field_id, wanted, token="a1", created_since=since)
    assert found.found == {"billmgr:contact:2": new["contact-1"]}         # exact match, not "...:22"
    assert found.complete                                                 # and :3 is known not to exist
    setup.emu.control.advance(3601)                                       # the index catches up
    by_token = client.find_by_marker("contacts", field_id, ["billmgr:contact:2", "billmgr:contact:22"],
                                     token="a1")
    assert by_token.complete and by_token.found == {"billmgr:contact:2": new["contact-1"],
                                                    "billmgr:contact:22": new["contact-2"]}
    assert client.find_by_marker("contacts", field_id, ["billmgr:contact:1"],
                                 created_since=since - 60).found == {"billmgr:contact:1": old["contact-0"]}


def test_a_marker_scan_stops_at_its_page_budget_and_goes_on_from_there(setup: Setup) -> None:
    client = setup.client()
    field_id = client.create_custom_fields("contacts", [{"name": "BILLmanager ID", "type": "text"}])[0]["id"]
    since = int(setup.emu.control.now()) - 1
    for start in range(0, 600, 250):
        client.create("contacts", [{"name": f"c{n}", "request_id": f"contact-{n}", "custom_fields_values": [
            {"field_id": field_id, "values": [{"value": f"billmgr:contact:{n}"}]}]}
            for n in range(start, min(start + 250, 600))])
    seq = int(setup.api_requests()[-1]["seq"])
    first = client.find_by_marker("contacts", field_id, ["billmgr:contact:599"], created_since=since,
                                  max_pages=1)
    assert not first.complete and not first.found and first.resume_from is not None
    assert len([r for r in setup.emu.control.requests(since=seq) if r["method"] == "GET"]) == 1
    rest = client.find_by_marker("contacts", field_id, ["billmgr:contact:599"],
                                 created_since=first.resume_from, max_pages=4)
    assert rest.complete and list(rest.found) == ["billmgr:contact:599"]



def test_a_refused_link_is_named_with_amocrms_words_and_the_others_are_made(setup: Setup) -> None:
    client = setup.client()
    ids = client.create("contacts", [{"name": f"c{n}", "request_id": f"c{n}"} for n in range(3)]).ids
    lead = client.create("leads", [{"name": "VPS", "request_id": "lead"}]).ids["lead"]
    gone = ids["c1"]
    setup.emu.control.delete_entity("contacts", gone)
    links = [{"entity_id": lead, "to_entity_id": ids[f"c{n}"], "to_entity_type": "contacts"}
             for n in range(3)]
    refused = client.link("leads", links)
    assert list(refused) == [1]
    assert refused[1].startswith(f"amoCRM refused to link leads {lead} to contacts {gone}: "
                                 "NotSupportedChoice")
    assert "to_entity_id" in refused[1]
    linked = client.get("leads", [lead], with_=["contacts"])[lead]["_embedded"]["contacts"]
    assert sorted(c["id"] for c in linked) == sorted([ids["c0"], ids["c2"]])
    posts = [len(r["body"]) for r in setup.api_requests() if r["path"] == "/api/v4/leads/link"]
    assert posts == [3, 2]   # the 400 linked nothing; the two good links went again, once


def test_a_link_refusal_that_names_no_item_is_split_until_the_culprit_stands_alone(setup: Setup) -> None:
    client = setup.client()
    ids = client.create("contacts", [{"name": f"c{n}", "request_id": f"c{n}"} for n in range(4)]).ids
    lead = client.create("leads", [{"name": "VPS", "request_id": "lead"}]).ids["lead"]
    links = [{"entity_id": lead, "to_entity_id": ids[f"c{n}"], "to_entity_type": "contacts"}
             for n in range(4)]
    # a 400 that names no item, for the first three requests
    setup.emu.control.add_fault(action="status", status=400, method="POST", path="^/api/v4/leads/link$",
                                count=3)
    refused = client.link("leads", links)
    # fault 1: all four; 2: first half [c0, c1]; 3: [c0] alone -> refused; then [c1] and [c2, c3] go through
    assert list(refused) == [0] and "Injected fault" in refused[0]
    linked = client.get("leads", [lead], with_=["contacts"])[lead]["_embedded"]["contacts"]
    assert sorted(c["id"] for c in linked) == sorted(ids[f"c{n}"] for n in (1, 2, 3))


def test_unlink_removes_a_link(setup: Setup) -> None:
    client = setup.client()
    contact = client.create("contacts", [{"name": "c", "request_id": "c"}]).ids["c"]
    lead = client.create("leads", [{"name": "VPS", "request_id": "lead"}]).ids["lead"]
    link = {"entity_id": lead, "to_entity_id": contact, "to_entity_type": "contacts"}
    assert client.link("leads", [link]) == {}
    assert client.unlink("leads", [link]) == {}
    assert not client.get("leads", [lead], with_=["contacts"])[lead]["_embedded"].get("contacts")


def test_a_write_naming_a_field_amocrm_no_longer_has_says_which_field(setup: Setup) -> None:
    client = setup.client()
    [made] = client.create_custom_fields("leads", [{"name": "Тариф 2", "type": "text"}])
    select = next(f for f in client.custom_fields("leads") if f["type"] == "select")
    setup.emu.control.delete_custom_field("leads", made["id"])
    outcome = client.create("leads", [
        {"name": "names the deleted field", "request_id": "gone",
         "custom_fields_values": [
             {"field_id": select["id"], "values": [{"enum_id": select["enums"][0]["id"]}]},
             {"field_id": made["id"], "values": [{"value": "x"}]}]},
        {"name": "a bad option of a field amoCRM has", "request_id": "option",
         "custom_fields_values": [{"field_id": select["id"], "values": [{"enum_id": 1}]}]},
        {"name": "fine", "request_id": "fine"}])
    assert set(outcome.ids) == {"fine"} and set(outcome.rejected) == {"gone", "option"}
    assert dict(outcome.unknown_fields) == {"gone": frozenset({made["id"]})}
