"""Someone deletes, in amoCRM's settings, a custom field the module writes.

An amoCRM admin tidying the account may delete the module's "BILLmanager ID" field, or a
field a custom field rule maps. amoCRM then refuses every write of that kind naming it
(``NotSupportedChoice`` at ``custom_fields_values.N.field_id``): before, every client,
payer or service edited afterwards failed until an admin edited amocrm.conf by hand. Now
the pass reads the catalog, makes the module's own field anew, leaves a rule's field out,
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
from billmgr_amocrm.sync.gone_fields import gone_fields

from .conftest import Rig
from .test_cli import amocrm

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

    assert code == 0 and " 0 failed" in out, out
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
