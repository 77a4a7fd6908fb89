"""Renewal task rules in the panel (issue 17.3): add, edit, list, refuse bad input, reorder, delete."""

from __future__ import annotations

import json
from pathlib import Path

from tests.panel.support import assert_ok, slist, ui


def conf(root: Path) -> dict:
    return json.loads((root / "etc/amocrm/amocrm.conf").read_text())


def test_renewal_rule_life_cycle(mgr5_root: Path) -> None:
    opened = ui("amocrm.renewals.edit", lang="en")
    assert opened.findtext("days_before") == "14" and opened.findtext("skip_autoprolong") == "on"
    assert "{service_name}" in opened.findtext("text") and "service.type" in slist(opened, "c1_value")
    assert slist(opened, "responsible_user_id") == {"": "not set (amoCRM decides)"}
    version = opened.findtext("conf_version")
    base = {"sok": "ok", "conf_version": version, "days_before": "7", "responsible_user_id": "",
            "text": "Позвонить: {service_name} ({domain}) до {expiredate}, {price}",
            "skip_autoprolong": "off",
            "c1_value": "service.type", "c1_validator": "equals", "c1_argument": "vds"}

    for change, field in (({"days_before": "400"}, "days_before"), ({"days_before": "x"}, "days_before"),
                          ({"text": " "}, "text"), ({"text": "Продлить {name}"}, "text")):
        refused = ui("amocrm.renewals.edit", {**base, **change}, lang="en")
        err = refused.find("error")
        assert err is not None and err.get("object") == field, change
    assert 'unknown placeholder "{name}"' in ui("amocrm.renewals.edit", {**base, "text": "Продлить {name}"},
                                                 lang="en").findtext("error/msg")
    assert not (mgr5_root / "etc/amocrm/amocrm.conf").exists()          # nothing was written

    assert_ok(ui("amocrm.renewals.edit", base))
    (rule,) = conf(mgr5_root)["renewals"]
    assert rule["id"].startswith("r") and rule["days_before"] == 7 and rule["skip_autoprolong"] is False
    assert rule["conditions"] == [{"value": "service.type", "validator": "equals", "argument": "vds"}]
    second = ui("amocrm.renewals.edit", lang="en")
    assert_ok(ui("amocrm.renewals.edit", {"sok": "ok", "conf_version": second.findtext("conf_version"),
                                          "days_before": "30", "text": "Продлить {service_name}",
                                          "skip_autoprolong": "on"}))
    first_id, second_id = [r["id"] for r in conf(mgr5_root)["renewals"]]

    listed = ui("amocrm.renewals", lang="ru")
    rows = [(e.findtext("id"), e.findtext("position"), e.findtext("days_before"))
            for e in listed.findall("elem")]
    assert rows == [(first_id, "1", "7"), (second_id, "2", "30")]
    assert listed.findall("elem")[1].findtext("conditions") == "всегда"

    edit = ui("amocrm.renewals.edit", {"elid": first_id})
    assert edit.findtext("days_before") == "7" and edit.findtext("c1_argument") == "vds"
    changed = {**base, "elid": first_id, "conf_version": edit.findtext("conf_version"), "days_before": "10"}
    assert_ok(ui("amocrm.renewals.edit", changed))
    assert conf(mgr5_root)["renewals"][0]["days_before"] == 10

    assert_ok(ui("amocrm.renewals.down", {"elid": first_id}))
    assert [r["id"] for r in conf(mgr5_root)["renewals"]] == [second_id, first_id]
    assert_ok(ui("amocrm.renewals.up", {"elid": first_id}))
    assert_ok(ui("amocrm.renewals.delete", {"elid": f"{first_id}, {second_id}"}))
    assert conf(mgr5_root)["renewals"] == []
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert "func=amocrm.renewals.edit" in log and "func=amocrm.renewals.delete" in log
