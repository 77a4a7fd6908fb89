"""Sync settings form, pipeline rule order (Up/Down), pipeline names, next-step hints for service errors.

The first tests need only amocrm.conf (no database, no amoCRM): they also show the forms stay
usable when amoCRM's catalog cannot be loaded. The last one runs against MariaDB and the amoCRM
emulator, where the user list and the pipeline names are real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.panel import catalog as amo_catalog
from billmgr_amocrm.panel import i18n
from billmgr_amocrm.panel.backend import service_message
from billmgr_amocrm.panel.syncsettings import user_options
from tests.panel.support import assert_ok, error_text, golden, slist, ui

LOOPBACK = {"BILLMGR_AMOCRM_ALLOW_LOOPBACK": "1"}
REDIRECT = "https://billing.example.com/billmgr"


def conf_path(root: Path) -> Path:
    return root / "etc/amocrm/amocrm.conf"


def write_conf(root: Path, **sections: Any) -> None:
    conf_path(root).write_text(json.dumps({"version": 1, **sections}))


def conf(root: Path) -> Dict[str, Any]:
    return json.loads(conf_path(root).read_text())


def pipeline_rule(rule_id: str, pipeline_id: int, status_id: int, **extra: Any) -> Dict[str, Any]:
    return {"id": rule_id, "pipeline_id": pipeline_id, "status_id": status_id, **extra}


def order(root: Path) -> List[str]:
    return [rule["id"] for rule in conf(root)["pipelines"]]


# --------------------------------------------------------------------------- Up / Down
def test_pipeline_rules_move_up_and_down_as_a_block_and_stop_at_the_edge(mgr5_root: Path) -> None:
    status_cond = {"value": "service.status", "validator": "equals", "argument": "2"}
    write_conf(
        mgr5_root,
        pipelines=[
            pipeline_rule("p1", 10, 11),
            pipeline_rule("p2", 20, 21, conditions=[status_cond]),
            pipeline_rule("p3", 30, 31),
            pipeline_rule("p4", 40, 41),
        ],
    )
    assert_ok(ui("amocrm.pipelines.up", {"elid": "p3"}))
    assert order(mgr5_root) == ["p1", "p3", "p2", "p4"]
    assert_ok(ui("amocrm.pipelines.down", {"elid": "p1, p3"}))
    assert order(mgr5_root) == ["p2", "p1", "p3", "p4"]  # both moved one place, still adjacent
    assert conf(mgr5_root)["pipelines"][0]["conditions"] == [status_cond]  # rules move whole

    before = conf_path(mgr5_root).read_bytes()
    assert_ok(ui("amocrm.pipelines.up", {"elid": "p1, p2"}))  # p2 is first: the block cannot move
    assert_ok(ui("amocrm.pipelines.down", {"elid": "p4"}))
    assert conf_path(mgr5_root).read_bytes() == before
    for params, lang in (({"elid": "p3, p9"}, "ru"), ({"elid": ""}, "en")):
        assert ui("amocrm.pipelines.down", params, lang=lang).find("error") is not None
    assert "p9" in error_text(ui("amocrm.pipelines.up", {"elid": "p9"}, lang="en"))
    assert conf_path(mgr5_root).read_bytes() == before  # a bad id moves nothing at all

    # no amoCRM catalog was ever fetched: ids are shown as they are, nothing is flagged missing
    listed = ui("amocrm.pipelines", lang="en")
    rows = [(e.findtext("id"), e.findtext("position"), e.findtext("pipeline")) for e in listed.iter("elem")]
    assert rows == [("p2", "1", "#20"), ("p1", "2", "#10"), ("p3", "3", "#30"), ("p4", "4", "#40")]
    assert listed.findtext("elem/conditions") == "Service status equals 2 (Active)"

    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert "func=amocrm.pipelines.up elid=p3 changed=moved:p3 result=moved 1 up" in log
    assert "func=amocrm.pipelines.down elid=p1, p3 changed=moved:p1,moved:p3 result=moved 2 down" in log
    assert "result=unchanged: already at the edge" in log


# --------------------------------------------------------------------------- sync settings
def test_sync_settings_save_limits_without_amocrm_and_refuse_what_cannot_be_checked(mgr5_root: Path) -> None:
    markers = {"contact": 77, "company": None, "lead": 79}
    write_conf(
        mgr5_root,
        auth={"url": "https://demo.amocrm.ru", "client_id": "x", "redirect_uri": REDIRECT},
        sync={"responsible_user_id": 504144, "marker_field_ids": markers},
    )
    opened = ui("amocrm.syncsettings", lang="en")  # no db.conf here, so no amoCRM catalog either
    golden("syncsettings_open_no_catalog_en", opened)
    assert slist(opened, "responsible_user_id") == {
        "": "not set (amoCRM decides)",
        "504144": "#504144 (the amoCRM user list is unavailable)",
    }

    before = conf_path(mgr5_root).read_bytes()
    valid = {"sok": "ok", "responsible_user_id": "504144", "rate_limit": "5", "batch_size": "50",
             "match_existing": "on"}
    refused = [
        ({"rate_limit": "8"}, "rate_limit"),
        ({"rate_limit": "0"}, "rate_limit"),
        ({"rate_limit": "nan"}, "rate_limit"),
        ({"batch_size": "251"}, "batch_size"),
        ({"batch_size": "2.5"}, "batch_size"),
        ({"responsible_user_id": "boss"}, "responsible_user_id"),
        ({"responsible_user_id": "504147"}, "responsible_user_id"),  # a change needs the user list
    ]
    for change, field in refused:
        doc = ui("amocrm.syncsettings", {**valid, **change}, lang="en")
        err = doc.find("error")
        assert err is not None and err.get("object") == field, (change, error_text(doc))
    assert conf_path(mgr5_root).read_bytes() == before
    golden("syncsettings_error_rate_ru", ui("amocrm.syncsettings", {**valid, "rate_limit": "7.5"}))

    # the stored user is kept without re-checking; the limits are saved, the rest of the file stays
    saved = {**valid, "rate_limit": " 2,5 ", "batch_size": "100", "recreate_deleted": "off"}
    assert_ok(ui("amocrm.syncsettings", saved))
    sync = conf(mgr5_root)["sync"]
    assert (sync["rate_limit"], sync["batch_size"], sync["recreate_deleted"]) == (2.5, 100, False)
    assert sync["match_existing"] is True
    assert sync["responsible_user_id"] == 504144 and sync["marker_field_ids"] == markers
    assert conf(mgr5_root)["auth"]["client_id"] == "x"
    reopened = ui("amocrm.syncsettings")
    assert [reopened.findtext(n) for n in ("rate_limit", "batch_size", "recreate_deleted")] == [
        "2.5",
        "100",
        "off",
    ]
    assert_ok(ui("amocrm.syncsettings", {**saved, "responsible_user_id": "", "recreate_deleted": "on"}))
    assert conf(mgr5_root)["sync"]["responsible_user_id"] is None
    assert conf(mgr5_root)["sync"]["recreate_deleted"] is True
    assert_ok(ui("amocrm.syncsettings", {**saved, "responsible_user_id": "", "recreate_deleted": "on",
                                         "match_existing": "off"}))
    assert conf(mgr5_root)["sync"]["match_existing"] is False
    assert ui("amocrm.syncsettings").findtext("match_existing") == "off"

    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert "func=amocrm.syncsettings elid=- changed=batch_size,rate_limit,recreate_deleted result=ok" in log
    assert "changed=recreate_deleted,responsible_user_id result=ok" in log
    assert "changed=match_existing result=ok" in log


def test_a_stored_user_amocrm_no_longer_offers_stays_visible_with_the_reason() -> None:
    cat = amo_catalog.from_raw(
        {
            "users": [
                {"id": 2, "name": "Boris", "rights": {"is_active": True}},
                {"id": 1, "name": "Anna", "rights": {"is_active": True}},
                {"id": 3, "name": "Petr", "rights": {"is_active": False}},
            ]
        }
    )
    offered = [key for key, _ in user_options(cat, None, "en")]
    assert offered == ["", "1", "2"]  # active users only, by name
    assert user_options(cat, 3, "en")[-1] == ("3", "Petr (#3, deactivated in amoCRM)")
    assert user_options(cat, 9, "ru")[-1] == ("9", "#9 (нет в amoCRM)")
    assert len(user_options(cat, 2, "en")) == 3  # an active stored user is not listed twice


# --------------------------------------------------------------------------- service error hints
SERVICE_CODES = sorted(
    {cls.code for cls in (service.ServiceError, *service.ServiceError.__subclasses__())} | {"amocrm_stopped"}
)


@pytest.mark.parametrize("code", SERVICE_CODES)
def test_every_service_error_code_has_a_next_step_in_both_languages(code: str) -> None:
    error = service.ServiceError("Сбой.", "Failure.", code=code)
    english = service_message(error, "en")
    assert english.startswith("Failure. ") and english[len("Failure. ") :] == i18n.service_hint(code, "en")
    assert service_message(error, "ru").startswith("Сбой. ") and len(service_message(error, "ru")) > 10
    # the facade's own (Russian) hint is more specific: a Russian page keeps it, an English one never shows it
    specific = service.ServiceError("Сбой.", "Failure.", "Введите новый код.", code=code)
    assert service_message(specific, "ru") == "Сбой. Введите новый код."
    assert "Введите" not in service_message(specific, "en")


def test_an_english_page_names_the_next_step_for_a_service_error(mgr5_root: Path) -> None:
    text = error_text(ui("amocrm.check", lang="en"))  # no db.conf: the facade's database error
    assert text.startswith("Cannot read the database settings")
    assert text.endswith(i18n.service_hint("database", "en"))
    assert i18n.service_hint("database", "ru") in error_text(ui("amocrm.check"))


# --------------------------------------------------------------------------- against amoCRM
def test_sync_settings_offer_active_amocrm_users_and_pipelines_show_names(
    mgr5_root: Path, sandbox_db: Any, amocrm_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    integration = amocrm_emulator.control.new_integration(redirect_uri=REDIRECT)
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    service.authorize(
        amocrm_emulator.url,
        integration["client_id"],
        integration["client_secret"],
        REDIRECT,
        integration["auth_code"],
    )
    amocrm_emulator.control.deactivate_user(504147)

    opened = ui("amocrm.syncsettings", env=LOOPBACK)
    golden("syncsettings_open_ru", opened)
    users = slist(opened, "responsible_user_id")
    assert "504144" in users and "504147" not in users  # deactivated users are not offered

    base = {"sok": "ok", "rate_limit": "5", "batch_size": "50", "recreate_deleted": "on"}
    for user, words in (("504147", "отключён"), ("999999", "нет пользователя")):
        doc = ui("amocrm.syncsettings", {**base, "responsible_user_id": user}, env=LOOPBACK)
        assert doc.findtext("error/param[@name='object']") == "responsible_user_id"
        assert words in error_text(doc)
    assert conf(mgr5_root)["sync"]["responsible_user_id"] is None
    assert_ok(ui("amocrm.syncsettings", {**base, "responsible_user_id": "504144"}, lang="en", env=LOOPBACK))
    assert conf(mgr5_root)["sync"]["responsible_user_id"] == 504144

    # names come from the catalog the form just fetched; what amoCRM no longer has is flagged
    catalog = json.loads((mgr5_root / "var/amocrm/catalog.json").read_text())
    pipeline = catalog["pipelines"][0]
    status = next(s for s in pipeline["_embedded"]["statuses"] if s["type"] != 1)
    config = conf(mgr5_root)
    config["pipelines"] = [
        pipeline_rule("p1", pipeline["id"], status["id"]),
        pipeline_rule("p2", pipeline["id"], 1),
        pipeline_rule("p3", 999, 1),
    ]
    conf_path(mgr5_root).write_text(json.dumps(config))
    listed = ui("amocrm.pipelines", lang="en")
    golden("pipelines_list_names_en", listed)
    rows = [(e.findtext("pipeline"), e.findtext("status")) for e in listed.iter("elem")]
    assert rows == [
        (pipeline["name"], status["name"]),
        (pipeline["name"], "#1 (not found in amoCRM)"),
        ("#999 (not found in amoCRM)", "#1"),
    ]
