"""A settings form saved after someone else saved amocrm.conf is refused: "the settings changed
since you opened them; reload" (ru/en), and nothing is written (issue 14, point 8).

The form carries the version of amocrm.conf it was opened from (the hidden ``conf_version``
field); the save compares it with the file under the save lock. Real handler subprocesses.
"""

from __future__ import annotations

from pathlib import Path

from billmgr_amocrm.panel import i18n
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import load, update_config
from tests.panel.support import assert_ok, error_text, ui


def someone_else_saves(root: Path, batch_size: int) -> None:
    """The worker (or another admin) saves amocrm.conf while the form is open."""
    update_config(HostPaths(root), lambda current: rebuild(
        current.config, {"sync": {**current.config.sync.model_dump(mode="json"), "batch_size": batch_size}}))


def test_sync_settings_saved_over_a_newer_file_are_refused_in_both_languages(mgr5_root: Path) -> None:
    for lang in ("ru", "en"):
        opened = ui("amocrm.syncsettings", lang=lang)
        version = opened.findtext("conf_version")
        assert version and version == load(HostPaths(mgr5_root)).version
        someone_else_saves(mgr5_root, 120)
        before = (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes()
        form = {"sok": "ok", "responsible_user_id": "", "rate_limit": "3", "batch_size": "40",
                "conf_version": version}
        refused = ui("amocrm.syncsettings", form, lang=lang)
        assert error_text(refused) == i18n.t("settings_changed", lang)
        assert (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes() == before
        # reopened: the form shows the other save and carries its version; now it saves
        reopened = ui("amocrm.syncsettings", lang=lang)
        assert reopened.findtext("batch_size") == "120"
        assert_ok(ui("amocrm.syncsettings", {**form, "conf_version": reopened.findtext("conf_version")},
                     lang=lang))
        assert load(HostPaths(mgr5_root)).config.sync.batch_size == 40
    assert "changed since you opened them" in i18n.t("settings_changed", "en")
    assert "изменились с тех пор, как вы их открыли" in i18n.t("settings_changed", "ru")


def test_a_rule_form_saved_over_a_newer_file_is_refused_and_a_refresh_keeps_the_opened_version(
        mgr5_root: Path) -> None:
    opened = ui("amocrm.tags.edit")
    version = opened.findtext("conf_version")
    rule = {"kind": "lead", "tag": "vps", "c1_value": "service.type", "c1_validator": "equals",
            "c1_argument": "vds"}
    # a refresh of the form (setvalues) keeps the version it was opened from
    refreshed = ui("amocrm.tags.edit", {"sv_field": "c1_value", **rule, "conf_version": version})
    assert refreshed.findtext("conf_version") == version
    someone_else_saves(mgr5_root, 99)
    refused = ui("amocrm.tags.edit", {"sok": "ok", **rule, "conf_version": version})
    assert error_text(refused) == i18n.t("settings_changed", "ru")
    assert load(HostPaths(mgr5_root)).config.tags == ()
    assert_ok(ui("amocrm.tags.edit", {"sok": "ok", **rule, "conf_version": ui("amocrm.tags.edit")
                                      .findtext("conf_version")}))
    assert [t.tag for t in load(HostPaths(mgr5_root)).config.tags] == ["vps"]
