"""Sync conditions and tags: list, add, edit, setvalues, validation, delete — through the real handler.

These sections need only the presets and amocrm.conf (no database, no amoCRM).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.panel.support import assert_ok, error_text, golden, slist, ui


def conf(root: Path) -> dict:
    return json.loads((root / "etc/amocrm/amocrm.conf").read_text())


def test_tag_rule_life_cycle(mgr5_root: Path) -> None:
    opened = ui("amocrm.tags.edit")
    golden("tags_edit_new_ru", opened)
    assert "service.type" in slist(opened, "c1_value")

    # setvalues: choosing an entity and a value narrows the choices of the next selects
    changed = ui("amocrm.tags.edit", {"sv_field": "c1_value", "kind": "company", "c1_value": "payer.type"})
    assert all(key == "" or key.startswith("payer.") for key in slist(changed, "c1_value"))
    checks = slist(changed, "c1_validator")
    assert "equals" in checks and "greater" not in checks  # an enum cannot be "greater"

    saved = ui(
        "amocrm.tags.edit",
        {
            "sok": "ok",
            "kind": "lead",
            "tag": "  VPS  клиент ",
            "c1_value": "service.type",
            "c1_validator": "in_list",
            "c1_argument": "vds, dedic",
        },
    )
    assert_ok(saved)
    config = conf(mgr5_root)
    rule_id = config["tags"][0]["id"]
    assert rule_id.startswith("t")
    assert config["tags"] == [
        {
            "id": rule_id,
            "entity": "lead",
            "tag": "VPS клиент",
            "conditions": [{"value": "service.type", "validator": "in_list", "argument": "vds, dedic"}],
        }
    ]
    assert stat.S_IMODE((mgr5_root / "etc/amocrm/amocrm.conf").stat().st_mode) == 0o600

    listed = ui("amocrm.tags", lang="en")
    golden("tags_list_en", listed, volatile_tags=("id",))
    assert listed.findtext("elem/id") == rule_id

    edit = ui("amocrm.tags.edit", {"elid": rule_id})
    assert edit.findtext("tag") == "VPS клиент" and edit.findtext("c1_argument") == "vds, dedic"
    assert_ok(
        ui(
            "amocrm.tags.edit",
            {
                "elid": rule_id,
                "sok": "ok",
                "kind": "lead",
                "tag": "VPS",
                "c1_value": "service.status",
                "c1_validator": "equals",
                "c1_argument": "2",
            },
        )
    )
    assert conf(mgr5_root)["tags"][0]["tag"] == "VPS"
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert (
        f"func=amocrm.tags.edit elid={rule_id} changed=c1_argument,c1_validator,c1_value,tag result=ok" in log
    )

    assert_ok(ui("amocrm.tags.delete", {"elid": rule_id}))
    assert conf(mgr5_root)["tags"] == []


def test_invalid_tag_rules_are_refused_in_the_admins_language_and_nothing_is_saved(mgr5_root: Path) -> None:
    assert_ok(ui("amocrm.tags.edit", {"sok": "ok", "kind": "lead", "tag": "keep"}))
    kept = conf(mgr5_root)["tags"][0]["id"]
    before = (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes()
    cases = [
        ({"kind": "lead", "tag": ""}, "tag", "ru"),
        (
            {
                "kind": "lead",
                "tag": "x",
                "c1_value": "client.email",
                "c1_validator": "equals",
                "c1_argument": "a",
            },
            "c1_value",
            "ru",
        ),
        (
            {"kind": "lead", "tag": "x", "c1_value": "service.cost", "c1_validator": "greater"},
            "c1_argument",
            "en",
        ),
        (
            {
                "kind": "lead",
                "tag": "x",
                "c1_value": "service.cost",
                "c1_validator": "greater",
                "c1_argument": "abc",
            },
            "c1_argument",
            "en",
        ),
        ({"kind": "lead", "tag": "x", "c2_value": "service.type"}, "c2_validator", "ru"),
        ({"kind": "robot", "tag": "x"}, "kind", "en"),
    ]
    for params, field, lang in cases:
        doc = ui("amocrm.tags.edit", {"sok": "ok", **params}, lang=lang)
        err = doc.find("error")
        assert err is not None and err.get("object") == field, (params, error_text(doc))
        assert (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes() == before
    golden("tags_error_argument_en", ui("amocrm.tags.edit", {"sok": "ok", **cases[2][0]}, lang="en"))
    golden("tags_error_incomplete_ru", ui("amocrm.tags.edit", {"sok": "ok", **cases[4][0]}))
    assert "не найдено" in error_text(ui("amocrm.tags.edit", {"elid": "t99"}))
    assert ui("amocrm.tags.delete", {"elid": f"{kept}, t99"}).find("error") is not None
    assert (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes() == before


def test_sync_conditions_move_between_entities_and_list_readably(mgr5_root: Path) -> None:
    assert_ok(
        ui(
            "amocrm.conditions.edit",
            {"sok": "ok", "kind": "lead", "value": "service.status", "validator": "equals", "argument": "2"},
        )
    )
    assert_ok(
        ui(
            "amocrm.conditions.edit",
            {"sok": "ok", "kind": "contact", "value": "client.email", "validator": "not_empty"},
        )
    )
    lead_id = conf(mgr5_root)["conditions"]["lead"][0]["id"]
    [contact] = conf(mgr5_root)["conditions"]["contact"]
    assert contact == {
        "id": contact["id"],
        "value": "client.email",
        "validator": "not_empty",
        "argument": None,
    }
    golden("conditions_list_ru", ui("amocrm.conditions"), volatile_tags=("id",))
    opened = ui("amocrm.conditions.edit", {"elid": f"lead:{lead_id}"})
    assert opened.findtext("value") == "service.status" and opened.findtext("kind") == "lead"
    assert_ok(
        ui(
            "amocrm.conditions.edit",
            {
                "elid": f"lead:{lead_id}",
                "sok": "ok",
                "kind": "company",
                "value": "payer.inn",
                "validator": "not_empty",
            },
        )
    )
    config = conf(mgr5_root)["conditions"]
    assert config["lead"] == [] and [c["id"] for c in config["company"]] == [lead_id]
    # a "not empty" check takes no argument: one typed anyway is dropped, not saved
    assert_ok(
        ui(
            "amocrm.conditions.edit",
            {
                "elid": f"company:{lead_id}",
                "sok": "ok",
                "kind": "company",
                "value": "payer.inn",
                "validator": "not_empty",
                "argument": "x",
            },
        )
    )
    assert conf(mgr5_root)["conditions"]["company"][0]["argument"] is None
    sv = ui("amocrm.conditions.edit", {"sv_field": "kind", "kind": "contact", "value": ""})
    assert set(slist(sv, "value")) - {""} <= {k for k in slist(sv, "value") if k.startswith("client.")}
    assert_ok(ui("amocrm.conditions.delete", {"elid": f"company:{lead_id}, contact:{contact['id']}"}))
    assert conf(mgr5_root)["conditions"] == {"contact": [], "company": [], "lead": []}


def test_a_broken_config_file_is_reported_with_its_path(mgr5_root: Path) -> None:
    (mgr5_root / "etc/amocrm/amocrm.conf").write_text('{"version": 1, "tags": [{"id": "t1"}]}')
    text = error_text(ui("amocrm.tags", lang="en"))
    assert "amocrm.conf" in text and "tags.0" in text
