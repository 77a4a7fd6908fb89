"""The Integration settings form's "BILLmanager address" (issue 17.4): the base of the links contacts and
leads carry back to BILLmanager's admin panel.

Offered from what BILLmanager says (the first project's billurl, read from the sandbox) or else the
redirect URL; validated as an https address and normalized; saved alone without a new authorization
code, refused when amocrm.conf changed since the form was opened; cleared by an empty field.
Real handler subprocesses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billmgr_amocrm.panel import i18n
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import billmgr_base_url, rebuild
from billmgr_amocrm.settings import load, update_config
from tests.panel.support import assert_ok, error_text, ui

REDIRECT = "https://billing.example.com/billmgr"
AUTH = {"url": "https://abc.amocrm.ru", "client_id": "abc", "redirect_uri": REDIRECT}


def configured(root: Path) -> None:
    """An integration set up before (the authorization fields stored)."""
    update_config(HostPaths(root), lambda current: rebuild(current.config, {"auth": AUTH}))


def stored_url(root: Path) -> str:
    return str(load(HostPaths(root)).config.sync.billmgr_url)


def test_the_address_is_normalized_and_only_https_is_accepted() -> None:
    assert billmgr_base_url("") == ""
    assert billmgr_base_url(" https://Billing.Example.com/billmgr/ ") == "https://billing.example.com"
    assert billmgr_base_url("https://billing.example.com:8443/panel/billmgr") == \
        "https://billing.example.com:8443/panel"
    for bad in ("http://billing.example.com", "https://user:pw@billing.example.com", "ftp://x.example.com",
                "https://billing.example.com/?a=1", "https://billing.example.com/#x", "https://localhost",
                "https://bad_host.example.com", "https://billing.example.com:99999", "billing.example.com"):
        try:
            billmgr_base_url(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_opened_empty_the_form_offers_billmanagers_own_address(mgr5_root: Path, sandbox_db: Any) -> None:
    """The sandbox's first project has billurl https://my.first-host.ru/billmgr (db.conf is written)."""
    opened = ui("amocrm.settings", env={"HTTP_HOST": "billing.example.com"})
    assert opened.findtext("billmgr_url") == "https://my.first-host.ru"


def test_without_a_database_the_redirect_url_gives_the_address(mgr5_root: Path) -> None:
    opened = ui("amocrm.settings", env={"HTTP_HOST": "billing.example.com"})
    assert opened.findtext("billmgr_url") == "https://billing.example.com"
    assert opened.findtext("conf_version")


def test_the_address_alone_is_saved_without_a_code_and_an_empty_one_clears_it(mgr5_root: Path) -> None:
    configured(mgr5_root)
    for lang in ("ru", "en"):
        opened = ui("amocrm.settings", lang=lang)
        form = {"sok": "ok", **AUTH, "billmgr_url": "https://billing.example.com/billmgr/",
                "conf_version": opened.findtext("conf_version")}
        assert_ok(ui("amocrm.settings", form, lang=lang))
        assert stored_url(mgr5_root) == "https://billing.example.com"
        assert ui("amocrm.settings", lang=lang).findtext("billmgr_url") == "https://billing.example.com"
        # saved again unchanged: the url field ids are forgotten, the worker looks them up by code again
        update_config(HostPaths(mgr5_root), lambda current: rebuild(current.config, {"sync": {
            **current.config.sync.model_dump(mode="json"), "url_field_ids": {"contact": 5, "lead": 6}}}))
        again = ui("amocrm.settings", lang=lang)
        assert_ok(ui("amocrm.settings", {**form, "conf_version": again.findtext("conf_version")}, lang=lang))
        assert load(HostPaths(mgr5_root)).config.sync.url_field_ids.as_map() == {}
        # an invalid one is refused with the field named, nothing written
        bad = ui("amocrm.settings", {**form, "billmgr_url": "http://billing.example.com"}, lang=lang)
        assert bad.find("error").get("object") == "billmgr_url"
        assert error_text(bad) == i18n.t("billmgr_url_invalid", lang)
        # cleared: no links any more (the engine clears those written before)
        reopened = ui("amocrm.settings", lang=lang)
        assert_ok(ui("amocrm.settings", {**form, "billmgr_url": "",
                                         "conf_version": reopened.findtext("conf_version")}, lang=lang))
        assert stored_url(mgr5_root) == ""
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert "changed=billmgr_url result=ok" in log


def test_an_address_saved_over_a_newer_file_is_refused(mgr5_root: Path) -> None:
    configured(mgr5_root)
    for batch, lang in ((33, "ru"), (34, "en")):
        opened = ui("amocrm.settings", lang=lang)
        update_config(HostPaths(mgr5_root), lambda current, batch=batch: rebuild(   # someone else saves
            current.config, {"sync": {**current.config.sync.model_dump(mode="json"), "batch_size": batch}}))
        before = (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes()
        form = {"sok": "ok", **AUTH, "billmgr_url": "https://b.example.com",
                "conf_version": opened.findtext("conf_version")}
        refused = ui("amocrm.settings", form, lang=lang)
        assert error_text(refused) == i18n.t("settings_changed", lang)
        assert (mgr5_root / "etc/amocrm/amocrm.conf").read_bytes() == before
