"""Re-creating an entity re-links everything that pointed at the old one (issue 14, point 2).

A contact deleted in amoCRM and then synced comes back under a new id: its client's
companies and leads are linked to the new one and no longer to the old; a company that
comes back gets its contact and its leads again. Against the fakes, and against MariaDB
and the emulator with the reproducer of the issue (a contact and its company deleted).
"""

from __future__ import annotations

from typing import Any

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.engine import Engine
from tests.fakes import FakeAmo, FakeBilling, FakeRules, FakeStore, client, context, payer
from tests.fakes import service as item

from .test_scenarios import exported


def family() -> tuple[Engine, FakeAmo, FakeStore]:
    """Client 1 with legal payer 5 and services 7 and 8, all synced."""
    billing = FakeBilling()
    billing.clients_[1] = client(1)
    billing.payers_[5] = payer(5, account=1)
    billing.services_.update({7: item(7, account=1), 8: item(8, account=1)})
    amo, store = FakeAmo(), FakeStore()
    engine = Engine(amo, billing, store, FakeRules(), context(), jitter=lambda: 0.0, settle_after=0)
    store.enqueue(Kind.CONTACT, 1, "edit")
    store.enqueue(Kind.COMPANY, 5, "edit")
    store.enqueue_many(Kind.LEAD, [7, 8], "open")
    engine.run_pass()
    assert not store.queue
    return engine, amo, store


def test_a_recreated_contact_gets_its_company_and_leads_linked_to_it_and_the_old_links_removed():
    engine, amo, store = family()
    old = store.link_rows[Kind.CONTACT][1]
    company = store.link_rows[Kind.COMPANY][5]
    leads = [store.link_rows[Kind.LEAD][i] for i in (7, 8)]
    amo.deleted.add(("contacts", old))
    amo.links.clear()
    store.enqueue(Kind.CONTACT, 1, "edit")
    report = engine.run_pass()
    new = store.link_rows[Kind.CONTACT][1]
    assert report.recreated == 1 and new != old and not store.queue and report.failed == 0
    assert ("companies", company, "contacts", new) in amo.links
    for lead in leads:
        assert ("leads", lead, "contacts", new) in amo.links
        assert ("leads", lead, "companies", company) in amo.links
    assert sorted(amo.unlinked) == sorted([("companies", company, "contacts", old)]
                                          + [("leads", lead, "contacts", old) for lead in leads])


def test_a_recreated_company_gets_its_contact_and_leads_linked_again():
    engine, amo, store = family()
    contact = store.link_rows[Kind.CONTACT][1]
    old = store.link_rows[Kind.COMPANY][5]
    amo.deleted.add(("companies", old))
    amo.links.clear()
    store.enqueue(Kind.COMPANY, 5, "edit")
    report = engine.run_pass()
    new = store.link_rows[Kind.COMPANY][5]
    assert report.recreated == 1 and new != old and not store.queue and report.failed == 0
    assert ("companies", new, "contacts", contact) in amo.links
    for i in (7, 8):
        assert ("leads", store.link_rows[Kind.LEAD][i], "companies", new) in amo.links
    assert not amo.unlinked     # single relations: linking the new company replaced the old one


# --------------------------------------------------------------------------- MariaDB + emulator
def amocrm_view(rig: Any) -> dict[str, Any]:
    """What amoCRM shows of the module's entities: orphan leads and dangling links.

    orphan lead: a linked live lead whose live contacts do not include its client's linked
    contact, or whose company is not its client's linked company (when the client has one).
    dangling link: a relation in the account between a live entity and a deleted contact or
    company (the emulator keeps a deleted entity's relations, hidden from reads)."""
    state = rig.emulator.control.state()
    live = {e: {r["id"] for r in state["entities"][e] if not r["is_deleted"]} for e in state["entities"]
            if e in ("contacts", "companies", "leads")}
    dead = {e: {r["id"] for r in state["entities"][e] if r["is_deleted"]} for e in live}
    contacts_of: dict[int, set[int]] = {}
    company_of: dict[int, int] = {}
    dangling = []
    for edge in state["links"]:
        ends = [(edge["entity_type"], edge["entity_id"]), (edge["to_entity_type"], edge["to_entity_id"])]
        if any(i in live[t] for t, i in ends) and any(t != "leads" and i in dead[t] for t, i in ends):
            dangling.append(edge)
        if edge["entity_type"] == "leads" and edge["to_entity_type"] == "contacts":
            contacts_of.setdefault(edge["entity_id"], set()).add(edge["to_entity_id"])
        if edge["entity_type"] == "leads" and edge["to_entity_type"] == "companies":
            company_of[edge["entity_id"]] = edge["to_entity_id"]
    contact_links = rig.all_links(Kind.CONTACT)
    company_links = rig.all_links(Kind.COMPANY)
    first_payer = {}   # the client's company: its newest legal payer with one (sync/payers.py)
    for account, payer_id in rig.sandbox.query("SELECT account, id FROM profile WHERE profiletype = 2 "
                                                "ORDER BY account, id DESC"):
        if payer_id in company_links:
            first_payer.setdefault(int(account), company_links[payer_id])
    account_of = {int(i): int(a) for i, a in rig.sandbox.query("SELECT id, account FROM item")}
    orphans = []
    for item_id, lead in rig.all_links(Kind.LEAD).items():
        if lead not in live["leads"]:
            continue
        account = account_of[item_id]
        contact = contact_links.get(account)
        shown = contacts_of.get(lead, set()) & live["contacts"]
        company = first_payer.get(account)
        if (contact is not None and contact not in shown) or (
                company is not None and company_of.get(lead) != company):
            orphans.append(item_id)
    return {"orphan_leads": orphans, "dangling_links": dangling}


def test_a_contact_and_its_company_deleted_in_amocrm_then_resynced_leave_no_orphan_and_no_dangling_link(rig):
    exported(rig)
    payers = rig.all_links(Kind.COMPANY)
    services = {int(a): int(n)
                for a, n in rig.sandbox.query("SELECT account, COUNT(*) FROM item GROUP BY account")}
    account, payer_id = max(((int(a), int(p)) for a, p in rig.sandbox.query(
        "SELECT account, MIN(id) FROM profile WHERE profiletype = 2 GROUP BY account") if int(p) in payers),
        key=lambda pair: services.get(pair[0], 0))
    assert services.get(account, 0) >= 2
    control = rig.emulator.control
    control.delete_entity("contacts", rig.link(Kind.CONTACT, account))
    control.delete_entity("companies", payers[payer_id])
    before = amocrm_view(rig)
    assert len(before["orphan_leads"]) == services[account] and before["dangling_links"]
    service.resync(Kind.CONTACT, [account], app=rig.app)
    service.resync(Kind.COMPANY, [payer_id], app=rig.app)
    report = rig.sync()
    assert report.recreated == 2 and report.failed == 0 and report.stopped is None, report.failures
    after = amocrm_view(rig)
    assert after == {"orphan_leads": [], "dangling_links": []}
    status = service.status(app=rig.app)
    assert status.queue_depth == 0 and status.failed == 0
    for kind in Kind:
        assert max(rig.marker_counts(kind.amo_entity).values()) == 1


def test_a_link_refused_because_the_company_was_deleted_brings_the_company_and_the_lead_back(rig):
    exported(rig)
    leads = rig.all_links(Kind.LEAD)
    shown = rig.app.amo().get("leads", sorted(leads.values()))
    item, old = next((i, shown[leads[i]]["_embedded"]["companies"][0]["id"]) for i in sorted(leads)
                     if shown[leads[i]]["_embedded"]["companies"])
    rig.emulator.control.delete_entity("companies", old)
    # only the lead is edited: its link to the deleted company is refused, the company is pushed,
    # found gone and re-created, and the lead comes back to be linked to it, in the same pass
    service.resync(Kind.LEAD, [item], app=rig.app)
    report = rig.sync()
    assert report.recreated == 1 and report.failed == 1 and report.stopped is None
    status = service.status(app=rig.app)
    assert status.failed == 0 and status.queue_depth == 0
    lead = rig.app.amo().get("leads", [leads[item]])[leads[item]]
    (company,) = lead["_embedded"]["companies"]
    assert company["id"] != old and company["id"] in rig.all_links(Kind.COMPANY).values()
    assert amocrm_view(rig) == {"orphan_leads": [], "dangling_links": []}
