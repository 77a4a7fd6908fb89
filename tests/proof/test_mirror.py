"""Scenario 12 (issue 15): amoCRM shows what billing holds now and leaves managers' work alone.

After the initial export, BILLmanager empties values (users' phones, emails and names,
payers' email, phone and address, services' domain parameter and cost), clients delete
legal payers (with the panel's event, or none: the reconciler's part), services are
prolonged (a pipeline rule keyed on the event moves their leads), managers move leads by
hand in amoCRM (a PATCH with a token of amoCRM's own), then the module rechecks
(``amocrm reconcile``) and resyncs everything (``amocrm resync all``, run by the real
worker). Every step ends with the audit, which compares every mapped field with what the
rules compute now, absences included, and each client's company links; the placements are
checked too: a moved lead stays where the manager put it until the next prolongation.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Dict, List, Tuple

import requests

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.store.resolve import enqueue_event

from .mirror_audit import body_mismatches
from .support import ProofRig, all_keys

Stage = Tuple[int, int]


def configure(rig: ProofRig) -> Tuple[Stage, Stage, Stage]:
    """Fields and pipeline rules in amocrm.conf; returns (start, renewals, by_hand) stages."""
    state = rig.control.state()
    fields = state["custom_fields"]
    tariff = next(f for f in fields["leads"] if f["name"] == "Тариф")
    address = next(f for f in fields["companies"] if f["name"] == "Адрес")
    pipelines = state["pipelines"]
    main = next(p for p in pipelines if p["is_main"])
    other = next(p for p in pipelines if not p["is_main"])

    def working(pipeline: Dict[str, Any]) -> List[int]:
        return [s["id"] for s in pipeline["statuses"] if s["type"] == 0 and s["id"] not in (142, 143)]

    start, renewals, by_hand = (main["id"], working(main)[1]), (other["id"], working(other)[-1]), \
        (main["id"], working(main)[2])
    prolonged = [{"value": "service.event", "validator": "equals", "argument": "prolong"}]
    conf = json.loads(rig.paths.amocrm_conf.read_text(encoding="utf-8"))
    conf["fields"] = [
        {"id": "tariff", "entity": "lead", "field_id": tariff["id"], "field_type": "text",
         "value": "service.param.domain"},
        {"id": "address", "entity": "company", "field_id": address["id"], "field_type": "textarea",
         "value": "payer.address_legal"}]
    conf["pipelines"] = [
        {"id": "renewals", "pipeline_id": renewals[0], "status_id": renewals[1], "conditions": prolonged},
        {"id": "start", "pipeline_id": start[0], "status_id": start[1]}]
    conf["tags"] = [{"id": "renewed", "entity": "lead", "tag": "продлена", "conditions": prolonged}]
    rig.paths.amocrm_conf.write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    rig.app.reload_rules()
    return start, renewals, by_hand


def audited(rig: ProofRig, step: str) -> None:
    audit = rig.audit()
    assert audit.ok, f"after {step}: {audit.summary()}"


def placements(rig: ProofRig, items: List[int]) -> Dict[int, Stage]:
    links = rig.links(Kind.LEAD)
    leads = rig.live_entities(Kind.LEAD)
    return {i: (leads[links[i]]["pipeline_id"], leads[links[i]]["status_id"]) for i in items if i in links}


def manager_moves(rig: ProofRig, items: List[int], stage: Stage) -> None:
    """Managers move leads in amoCRM's UI (a mass status change): PATCHes with a token of another
    integration, so neither the module's token nor its rate budget is used."""
    ui = rig.control.new_integration()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {rig.control.issue_tokens(ui['client_id'])['access_token']}"
    links = rig.links(Kind.LEAD)
    for start in range(0, len(items), 50):
        body = [{"id": links[i], "pipeline_id": stage[0], "status_id": stage[1]}
                for i in items[start:start + 50]]
        answer = session.patch(f"{rig.emulator.url}/api/v4/leads", json=body)
        assert answer.status_code == 200, answer.text
        time.sleep(0.2)   # a person's pace: well under the limit


def empty_values(rig: ProofRig, rng: random.Random, count: int) -> int:
    """BILLmanager empties values; returns how many mapped values that cleared."""
    box = rig.sandbox
    accounts = rng.sample(rig.accounts_with_user(), count)
    for account in accounts:
        for (user,) in rig.sql("SELECT id FROM user WHERE account = %s", (account,)):
            box.edit_user(int(user), phone="", email="")
        box.edit_client(account, realname="")
        rig.enqueue(Kind.CONTACT, account)
    payers = rng.sample(rig.ids(Kind.COMPANY), count)
    for payer in payers:
        box.edit_payer(payer, email="", phone="", address_legal="", city_legal="", postcode_legal="")
        rig.enqueue(Kind.COMPANY, payer)
    items = rng.sample(rig.ids(Kind.LEAD), count)
    for n, item in enumerate(items):
        rig.sql("DELETE FROM itemparam WHERE item = %s AND intname = 'domain'", (item,))
        if n % 2:
            rig.sql("UPDATE item SET cost = NULL WHERE id = %s", (item,))
        rig.enqueue(Kind.LEAD, item)
    return len(accounts) * 2 + len(payers) * 3 + len(items)


def cleared_in_amocrm(rig: ProofRig) -> int:
    """PATCHed items that cleared something (a field with values null, a price null)."""
    count = 0
    for request in rig.api_requests():
        if request["method"] == "PATCH":
            for item in request["body"] or []:
                count += sum(1 for cf in item.get("custom_fields_values") or [] if cf["values"] is None)
                count += int("price" in item and item["price"] is None)
    return count


def delete_payers(rig: ProofRig, rng: random.Random, count: int) -> List[int]:
    """Clients delete bound legal payers: the main one of some clients, an older one of others."""
    bound = rig.links(Kind.COMPANY)
    rows = rig.sql("SELECT id, account FROM profile WHERE profiletype = 2 ORDER BY id")
    payers = rng.sample([(int(p), int(a)) for p, a in rows if int(p) in bound], count)
    for n, (payer, account) in enumerate(payers):
        rig.sandbox.delete_payer(payer)
        rig.touched.add((Kind.CONTACT, account))       # the audit checks the client's company links
        if n % 2 == 0:
            enqueue_event({"func": "profile.delete", "elid": str(payer)}, rig.app.store, rig.app.billing)
    return [p for p, _ in payers]


def test_clears_rechecks_resyncs_and_managers_moves_keep_amocrm_a_mirror(proof_rig_factory: Any,
                                                                        scale: Any) -> None:
    rig: ProofRig = proof_rig_factory(clients=scale(60, 1000), services=scale(200, 5000))
    start, renewals, by_hand = configure(rig)
    rng = random.Random(15)
    rig.enqueue_everything()
    rig.drain()
    audited(rig, "the initial export")
    items = [i for i in rig.ids(Kind.LEAD) if i in rig.links(Kind.LEAD)]
    assert set(placements(rig, items).values()) == {start}

    # 1. values emptied in BILLmanager are emptied in amoCRM
    before = cleared_in_amocrm(rig)
    emptied = empty_values(rig, rng, scale(20, 300))
    rig.drain()
    audited(rig, "emptying values")
    assert cleared_in_amocrm(rig) - before >= emptied // 2   # the clearings were really sent

    # 1b. payers deleted in BILLmanager, half through the panel's event, half found by the
    # reconciler: their companies leave the clients' contacts and leads, the next main one comes
    deleted = delete_payers(rig, rng, scale(10, 100))
    rig.drain()
    service.reconcile(app=rig.app)
    rig.drain()
    audited(rig, "deleting payers")
    assert not set(deleted) & set(rig.links(Kind.COMPANY)), "a deleted payer is still bound"

    # 2. prolongations move their leads (the rule keyed on the event)
    prolonged = rng.sample(items, scale(20, 400))
    for item in prolonged:
        rig.sandbox.prolong_service(item)
        rig.enqueue(Kind.LEAD, item, "prolong")
    rig.drain()
    audited(rig, "prolongations")
    assert set(placements(rig, prolonged).values()) == {renewals}

    # 3. managers move some prolonged and some other leads by hand
    others = [i for i in items if i not in set(prolonged)]
    moved = prolonged[: len(prolonged) // 2] + rng.sample(others, scale(10, 200))
    manager_moves(rig, moved, by_hand)

    # 4. a recheck and a resync of everything (the real worker) move nothing back
    service.reconcile(app=rig.app)      # amocrm reconcile (the sandbox's dates are fixed: it may find none)
    for item in items:                   # so every lead gets the reconciler's recheck
        rig.enqueue(Kind.LEAD, item, "reconcile")
    rig.drain()
    audited(rig, "the recheck")
    service.resync_all(app=rig.app)
    worker = rig.run_worker(timeout=scale(120, 1200))
    assert worker.returncode == 0, worker.stderr
    rig.touched |= all_keys(rig)
    rig.drain()
    audited(rig, "the resync of everything")
    shown = placements(rig, items)
    expected = {i: by_hand if i in set(moved) else renewals if i in set(prolonged) else start for i in items}
    wrong = {i: (shown[i], expected[i]) for i in items if shown[i] != expected[i]}
    assert not wrong, f"{len(wrong)} leads moved by a recheck or a resync: {list(wrong.items())[:5]}"

    # 5. until the next event the rules react to
    again = moved[: len(moved) // 2]
    for item in again:
        rig.sandbox.prolong_service(item)
        rig.enqueue(Kind.LEAD, item, "prolong")
    rig.drain()
    audited(rig, "the next prolongations")
    shown = placements(rig, moved)
    assert all(shown[i] == (renewals if i in set(again) else by_hand) for i in moved)


def test_the_audit_sees_a_value_amocrm_still_holds() -> None:
    """The audit's mirror check is not blind: a stale value, a missed clearing, a 0 price."""
    expected = {"name": "n", "price": None, "custom_fields_values": [
        {"field_code": "PHONE", "values": None}, {"field_id": 5, "values": [{"value": "a"}]}]}
    right = {"name": "n", "price": 0, "custom_fields_values": [
        {"field_id": 5, "field_code": None, "values": [{"value": "a"}]}]}
    assert body_mismatches("x", expected, right) == []
    stale = {"name": "n", "price": 10, "custom_fields_values": [
        {"field_id": 1, "field_code": "PHONE", "values": [{"value": "+7900", "enum_code": "WORK"}]},
        {"field_id": 5, "field_code": None, "values": [{"value": "b"}]}]}
    assert len(body_mismatches("x", expected, stale)) == 3
