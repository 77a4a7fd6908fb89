"""Someone deletes, in amoCRM's settings, a custom field or a pipeline stage the module writes.

An amoCRM admin tidying the account may delete the module's "BILLmanager ID" field, or a
field a custom field rule maps; a sales lead may delete the stage a pipeline rule places deals
in. amoCRM then refuses every write naming it: before, every client, payer or service edited
afterwards failed until an admin edited amocrm.conf by hand. Now the pass reads the catalog,
makes the module's own field anew, leaves a rule's field out or passes a rule's stage over,
and sends the records again (``sync/gone_fields.py``). Against MariaDB, the emulator and the
real commands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.adopt import adoption_pending
from billmgr_amocrm.sync.gone_fields import gone_fields, gone_placements

from .conftest import Rig
from .test_cli import amocrm
from .test_mirror import placement, stages

REPO = Path(__file__).resolve().parents[2]


def refusals(rig: Rig, since: int) -> list[dict[str, Any]]:
    return [r for r in rig.requests_since(since) if r.get("status") == 400]


def values_of(entity: dict[str, Any], field_id: int) -> Optional[list[Any]]:
    for cf in entity.get("custom_fields_values") or []:
        if cf["field_id"] == field_id:
            return [v["value"] for v in cf["values"]]
    return None


def test_the_marker_field_deleted_in_amocrm_is_made_anew_and_every_entity_gets_its_marker_back(
        rig: Rig) -> None:
    assert rig.sync().failed == 0
    contacts = rig.all_links(Kind.CONTACT)
    old_field = rig.app.marker_fields()[Kind.CONTACT]
    rig.emulator.control.delete_custom_field("contacts", old_field)
    account = min(contacts)
    rig.sandbox.edit_client(account, realname="Edited after the field went")
    rig.app.store.enqueue(Kind.CONTACT, account, "edit")     # the panel hook's event
    seq = rig.request_seq()

    code, out, _ = amocrm("sync")

    # held back, then sent in the same pass: nothing left to retry
    assert code == 0 and out.startswith("sync: 1 sent, 0 skipped, 0 failed, 0 to retry"), out
    assert refusals(rig, seq)                                    # amoCRM did refuse the first write
    conf = json.loads((rig.root / "etc" / "amocrm" / "amocrm.conf").read_text(encoding="utf-8"))
    new_field = conf["sync"]["marker_field_ids"]["contact"]
    assert new_field not in (None, old_field)
    made = [f for f in rig.app.amo().custom_fields("contacts") if f["id"] == new_field]
    assert made and made[0]["is_api_only"] and made[0]["code"] == "BILLMGR_ID"
    edited = rig.entity("contacts", contacts[account])
    assert edited["name"] == "Edited after the field went"
    assert values_of(edited, new_field) == [f"billmgr:contact:{account}"]
    assert conf["sync"]["marker_field_ids"]["company"] == rig.app.marker_fields()[Kind.COMPANY]
    assert not adoption_pending(rig.app.store)            # a field it made: nothing to adopt

    # the settings changed, so cron's next worker run re-checks what was sent: every contact
    # gets the new marker back, nothing is made twice
    proc = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                          env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for amocrm_id in contacts.values():
        marker = values_of(rig.entity("contacts", amocrm_id), new_field)
        assert marker is not None and marker[0].startswith("billmgr:contact:"), amocrm_id
    assert rig.all_links(Kind.CONTACT) == contacts
    assert len(rig.entities("contacts")) == len(contacts)


def test_a_rule_field_deleted_in_amocrm_is_left_out_and_the_rest_is_sent_and_said(rig: Rig) -> None:
    tariff = next(f for f in rig.app.amo().custom_fields("leads") if f["name"] == "Тариф")
    rule = rig.add_rule("fields", {"entity": "lead", "field_id": tariff["id"], "field_type": "text",
                                   "value": "service.param.domain"})
    assert rig.sync().failed == 0
    leads = rig.all_links(Kind.LEAD)
    item = min(leads)
    rig.emulator.control.delete_custom_field("leads", tariff["id"])
    rig.sandbox.query("UPDATE item SET name = %s WHERE id = %s", ("Renamed after the field went", item))
    rig.app.store.enqueue(Kind.LEAD, item, "edit")
    seq = rig.request_seq()

    code, out, _ = amocrm("sync")

    assert code == 0 and " 0 failed" in out, out
    assert len(refusals(rig, seq)) == 1
    lead = rig.entity("leads", leads[item])
    assert "Renamed after the field went" in lead["name"]
    assert gone_fields(rig.app.store) == {tariff["id"]}
    # the next process leaves the field out from the start: no refusal at all
    other = sorted(leads)[1]
    rig.sandbox.query("UPDATE item SET name = %s WHERE id = %s", ("Renamed later", other))
    rig.app.store.enqueue(Kind.LEAD, other, "edit")
    seq = rig.request_seq()
    code, out, _ = amocrm("sync")
    assert code == 0 and " 0 failed" in out and not refusals(rig, seq), out
    # the status names the rule to fix, from the catalog the pass read again
    status = amocrm("status")[1]
    said = f"Custom field rule {rule} (fields.0.field_id): leads have no custom field {tariff['id']}"
    assert said in status, status


def test_fields_deleted_between_the_set_up_and_the_export_are_made_anew_and_nothing_twice(rig: Rig) -> None:
    """Several batches in flight meet the refusal at once; each record is held once, the fields
    are set up again after they land, and the export goes on in the same pass."""
    field_ids = rig.app.marker_fields()
    for kind in (Kind.COMPANY, Kind.LEAD):
        rig.emulator.control.delete_custom_field(kind.amo_entity, field_ids[kind])

    report = rig.sync()

    assert report.failed == 0 and report.stopped is None, report
    rig.app.reload_rules()
    renewed = rig.app.marker_fields()
    assert renewed[Kind.CONTACT] == field_ids[Kind.CONTACT]
    for kind in (Kind.COMPANY, Kind.LEAD):
        assert renewed[kind] != field_ids[kind]
        links = rig.all_links(kind)
        counts = rig.marker_counts(kind.amo_entity)
        assert len(links) == len(rig.entities(kind.amo_entity)) and max(counts.values()) == 1
        assert set(counts) == {f"billmgr:{kind.value}:{b}" for b in links}, kind


def test_a_stage_deleted_in_amocrm_passes_its_rule_over_and_the_next_one_places_the_deal(rig: Rig) -> None:
    """A sales lead reshapes a pipeline and deletes the stage a pipeline rule places new deals in:
    the deals of services opened afterwards are made all the same, placed by the next rule."""
    start, elsewhere, later = stages(rig)
    suspended = {"value": "service.status", "validator": "equals", "argument": "3"}
    first = rig.add_rule("pipelines", {"pipeline_id": elsewhere[0], "status_id": elsewhere[1]})
    rig.add_rule("pipelines", {"pipeline_id": later[0], "status_id": later[1], "conditions": [suspended]})
    rig.add_rule("pipelines", {"pipeline_id": start[0], "status_id": start[1]})     # a catch-all
    box = rig.sandbox
    account = box.add_client(name="Стадии", email="stages@example.ru").account_id
    before = box.open_service(account, params={"domain": "before.ru"})
    assert rig.sync().failed == 0
    assert placement(rig, before) == elsewhere
    rig.emulator.control.delete_status(*elsewhere)
    opened = box.open_service(account, params={"domain": "after.ru"})
    rig.app.store.enqueue(Kind.LEAD, opened, "open")           # service.postopen
    seq = rig.request_seq()

    code, out, _ = amocrm("sync")

    assert code == 0 and " 0 failed" in out, out
    assert len(refusals(rig, seq)) == 1
    assert placement(rig, opened) == start          # the catch-all; the suspended-only rule holds not
    assert gone_placements(rig.app.store) == {elsewhere}
    status = amocrm("status")[1]
    assert f"Pipeline rule {first} (pipelines.0.status_id)" in status, status
    # the next process passes the rule over from the start: no refusal at all
    again = box.open_service(account, params={"domain": "again.ru"})
    rig.app.store.enqueue(Kind.LEAD, again, "open")
    seq = rig.request_seq()
    code, out, _ = amocrm("sync")
    assert code == 0 and " 0 failed" in out and not refusals(rig, seq), out
    assert placement(rig, again) == start


def set_responsible(rig: Rig, user_id: int) -> None:
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import save_config

    sync = rig.app.config.sync.model_dump(mode="json")
    sync["responsible_user_id"] = user_id
    config = rebuild(rig.app.config, {"sync": sync})
    save_config(config, rig.app.paths, rig.app.presets)
    rig.app.reload_rules(config)


def test_a_responsible_user_deactivated_in_amocrm_hands_over_to_the_integrations_user(rig: Rig) -> None:
    """A salesperson leaves and the amoCRM admin deactivates them without giving their entities
    to anyone: amoCRM refuses new entities for them and any change to what they own. The module
    makes new ones for the integration's user and gives what billing changes over to it."""
    set_responsible(rig, 504147)
    assert rig.sync().failed == 0
    contacts = rig.all_links(Kind.CONTACT)
    edited, untouched = sorted(contacts)[:2]
    assert rig.entity("contacts", contacts[edited])["responsible_user_id"] == 504147
    rig.emulator.control.deactivate_user(504147)
    rig.sandbox.edit_client(edited, realname="Edited after the user left")
    rig.app.store.enqueue(Kind.CONTACT, edited, "edit")
    newcomer = rig.sandbox.add_client(name="Signed up after the user left").account_id
    rig.app.store.enqueue(Kind.CONTACT, newcomer, "open")
    integration_user = rig.app.amo().account()["current_user_id"]
    assert integration_user != 504147

    code, out, _ = amocrm("sync")

    assert code == 0 and " 0 failed" in out, out
    changed = rig.entity("contacts", contacts[edited])
    assert changed["name"] == "Edited after the user left"
    assert changed["responsible_user_id"] == integration_user
    made = rig.entity("contacts", rig.all_links(Kind.CONTACT)[newcomer])
    assert made["responsible_user_id"] == integration_user
    # what billing did not change stays the deactivated user's, as the amoCRM admin left it
    assert rig.entity("contacts", contacts[untouched])["responsible_user_id"] == 504147
    status = amocrm("status")[1]
    assert "amoCRM user 504147 is deactivated" in status, status
    # the next process makes entities for the integration's user from the start: no refusal
    later = rig.sandbox.add_client(name="Signed up later").account_id
    rig.app.store.enqueue(Kind.CONTACT, later, "open")
    seq = rig.request_seq()
    code, out, _ = amocrm("sync")
    assert code == 0 and " 0 failed" in out and not refusals(rig, seq), out
    # activated again: the periodic catalog check (amocrm check reads the same) gives the
    # settings' choice back
    rig.emulator.control.activate_user(504147)
    amocrm("check")
    back = rig.sandbox.add_client(name="Signed up after the user came back").account_id
    rig.app.store.enqueue(Kind.CONTACT, back, "open")
    code, out, _ = amocrm("sync")
    assert code == 0 and " 0 failed" in out, out
    assert rig.entity("contacts", rig.all_links(Kind.CONTACT)[back])["responsible_user_id"] == 504147


def test_an_entity_a_deactivated_manager_owns_is_given_to_the_modules_responsible_user(rig: Rig) -> None:
    set_responsible(rig, 504147)
    assert rig.sync().failed == 0
    account = min(rig.all_links(Kind.CONTACT))
    contact = rig.all_links(Kind.CONTACT)[account]
    # a manager took the client over, then left
    rig.app.amo().update("contacts", [{"id": contact, "request_id": "manager",
                                       "responsible_user_id": 504144}])
    rig.emulator.control.deactivate_user(504144)
    rig.sandbox.edit_client(account, realname="Edited after the manager left")
    rig.app.store.enqueue(Kind.CONTACT, account, "edit")

    code, out, _ = amocrm("sync")

    assert code == 0 and " 0 failed" in out, out
    changed = rig.entity("contacts", contact)
    assert changed["name"] == "Edited after the manager left" and changed["responsible_user_id"] == 504147
