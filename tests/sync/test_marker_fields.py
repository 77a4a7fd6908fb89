"""The "BILLmanager ID" marker fields are API-only: people cannot change a marker in amoCRM's UI.

Created API-only; a field that is not (made by an older version, or by hand) is changed to
API-only when the module is authorized and by ``amocrm check``, which reports one it could
not change. The emulator refuses a hand edit of an API-only field, as amoCRM's UI does.
"""

from __future__ import annotations

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.markers import marker_identity, marker_value
from billmgr_amocrm.sync.fields import MARKER_FIELD_CODE, MARKER_FIELD_NAME, ensure_marker_fields
from tests.fakes import FakeAmo

from .test_scenarios import exported


def test_marker_fields_are_created_api_only_and_an_existing_one_is_made_so():
    amo = FakeAmo()
    amo.fields["companies"].append({"id": 77, "name": MARKER_FIELD_NAME, "type": "text", "code": None,
                                    "is_api_only": False})
    ids = ensure_marker_fields(amo)
    assert ids[Kind.COMPANY] == 77
    assert all(f["is_api_only"] for entity in ("contacts", "companies", "leads") for f in amo.fields[entity])
    assert [c for c in amo.calls if c[0] == "PATCH"] == [("PATCH", "companies/custom_fields", 1)]


def test_a_marker_cannot_be_edited_by_hand_in_amocrm(rig):
    exported(rig)
    fields = {f["id"]: f for f in rig.app.amo().custom_fields("contacts")}
    marker = rig.app.marker_fields()[Kind.CONTACT]
    assert fields[marker]["is_api_only"] is True and fields[marker]["code"] == MARKER_FIELD_CODE
    account = int(rig.sandbox.query("SELECT MIN(id) FROM account")[0][0])
    contact = rig.link(Kind.CONTACT, account)
    with pytest.raises(RuntimeError, match="403"):
        rig.emulator.control.edit_by_hand("contacts", contact, marker, "billmgr:contact:999999")
    shown = rig.entity("contacts", contact)["custom_fields_values"]
    values = {cf["field_id"]: cf["values"][0]["value"] for cf in shown}
    assert marker_identity(values[marker]) == marker_value(Kind.CONTACT, account)


def test_check_makes_an_editable_marker_field_api_only_or_says_it_could_not(rig):
    marker = rig.app.marker_fields()[Kind.LEAD]
    api = rig.emulator.session()
    url = f"{rig.emulator.url}/api/v4/leads/custom_fields"
    assert api.patch(url, json=[{"id": marker, "is_api_only": False}]).status_code == 200
    # the field is editable by hand now: a person can break a marker
    rig.emulator.control.add_fault(action="status", status=400, method="PATCH", path="custom_fields$")
    report = service.check_connection(app=rig.app)
    (problem,) = report.marker_problems
    assert f"field of leads (id {marker}) can be changed by people in amoCRM" in problem
    assert "Injected fault" in problem
    rig.emulator.control.clear_faults()
    assert service.check_connection(app=rig.app).marker_problems == ()
    fields = {f["id"]: f for f in rig.app.amo().custom_fields("leads")}
    assert fields[marker]["is_api_only"] is True


def test_authorize_makes_an_existing_editable_marker_field_api_only(sandbox_db, amocrm_emulator_factory,
                                                                    mgr5_root, monkeypatch):
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory()
    api = emulator.session()
    made = api.post(f"{emulator.url}/api/v4/contacts/custom_fields",
                    json=[{"name": MARKER_FIELD_NAME, "type": "text", "code": MARKER_FIELD_CODE}]).json()
    field = made["_embedded"]["custom_fields"][0]
    assert field["is_api_only"] is False
    integ = emulator.integration
    result = service.authorize(emulator.url, integ["client_id"], integ["client_secret"],
                               integ["redirect_uri"], integ["auth_code"])
    assert result.marker_field_ids["contact"] == field["id"]
    after = api.get(f"{emulator.url}/api/v4/contacts/custom_fields/{field['id']}").json()
    assert after["is_api_only"] is True


def test_the_worker_records_the_marker_ids_without_undoing_an_admins_save(rig):
    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.rules.editing import add_rule
    from billmgr_amocrm.settings import load, save_config, update_config

    paths = rig.app.paths
    ids = rig.app.marker_fields()
    update_config(paths, lambda current: rebuild(current.config, {"sync": {
        **current.config.sync.model_dump(mode="json"), "marker_field_ids": {}}}))
    worker = build(paths)            # reads amocrm.conf now: no marker ids yet
    try:
        admin = load(paths)          # an admin saves a rule while the worker runs
        config, _ = add_rule(admin.config, "tags", {"entity": "lead", "tag": "admin-rule"}, admin.presets)
        save_config(config, paths, admin.presets, admin.version)
        assert worker.ensure_marker_fields() == ids
    finally:
        worker.close()
    saved = load(paths).config
    assert [t.tag for t in saved.tags] == ["admin-rule"] and dict(saved.sync.marker_field_ids.as_map()) == ids
