"""The "Payment notes" form (issue 17.2): which payment states become notes, saved in amocrm.conf."""

from __future__ import annotations

from pathlib import Path

from tests.panel.support import assert_ok, ui
from tests.panel.test_followups import conf, write_conf


def test_payment_note_states_are_chosen_in_the_panel_and_kept_in_amocrm_conf(mgr5_root: Path) -> None:
    markers = {"contact": 77, "company": None, "lead": 79}
    write_conf(mgr5_root, sync={"marker_field_ids": markers})
    opened = ui("amocrm.notesettings", lang="en")
    assert [opened.findtext(f"state_{s}") for s in ("paid", "canceled", "refunded", "fraud")] == ["on"] * 4
    assert opened.findtext("on_leads") == "on" and opened.findtext("conf_version")
    version = opened.findtext("conf_version")
    form = {"sok": "ok", "conf_version": version, "state_paid": "on", "state_canceled": "off",
            "state_refunded": "on", "state_fraud": "off", "on_leads": "off"}
    assert_ok(ui("amocrm.notesettings", form))
    saved = conf(mgr5_root)
    assert saved["notes"] == {"payment_states": ["paid", "refunded"], "on_leads": False}
    assert saved["sync"]["marker_field_ids"] == markers           # the rest of the file stays
    reopened = ui("amocrm.notesettings", lang="ru")
    assert [reopened.findtext(f"state_{s}") for s in ("paid", "canceled", "refunded", "fraud")] == \
        ["on", "off", "on", "off"]
    # a form opened before that save is refused: nothing is overwritten
    refused = ui("amocrm.notesettings", {**form, "state_paid": "off"}, lang="en")
    assert refused.find("error") is not None
    assert conf(mgr5_root)["notes"]["payment_states"] == ["paid", "refunded"]
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert "func=amocrm.notesettings elid=- changed=on_leads,state_canceled,state_fraud result=ok" in log
