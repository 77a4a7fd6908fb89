"""Every message the panel shows is wholly in the page's language and names fields by their labels.

For each form and action that can fail, the error is read through the real handler in Russian and
in English: a Russian message holds no Latin word but proper names, URLs, paths, ids and what the
test itself submitted (``tests/panel/language.py``); an English one holds no Cyrillic; a field's
error names the field by the label the descriptor gives it in that language.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import pytest
from lxml import etree

from tests.panel.language import assert_in, assert_names
from tests.panel.support import descriptor, error_text, run_ui, safe_parser, ui

LANGS = ("ru", "en")
LOOPBACK = {"BILLMGR_AMOCRM_ALLOW_LOOPBACK": "1"}
REDIRECT = "https://billing.example.com/billmgr"
URL = "https://abc.amocrm.ru"
SETTINGS = {"sok": "ok", "url": URL, "client_id": "abc", "redirect_uri": REDIRECT}


def label(func: str, field: str, lang: str) -> str:
    """The field's caption in the descriptor (what the admin sees beside the input)."""
    for block in descriptor().findall("lang"):
        if block.get("name") == lang:
            for messages in block.findall("messages"):
                if messages.get("name") == func:
                    for msg in messages.findall("msg"):
                        if msg.get("name") == field and msg.text:
                            return msg.text
    raise AssertionError(f"no {lang} label for {func} {field}")


def check(doc: etree._Element, lang: str, func: str, field: Optional[str] = None,
          echoed: Sequence[str] = ()) -> str:
    text = error_text(doc)
    assert_in(text, lang, echoed)
    if field is not None:
        assert doc.find("error").get("object") == field, text
        assert_names(text, label(func, field, lang))
    return text


# (func, params, field the error is about, values the message may echo)
Case = Tuple[str, Dict[str, str], Optional[str], Tuple[str, ...]]
WITHOUT_AMOCRM: Sequence[Case] = (
    ("amocrm.settings", {"sok": "ok", "url": ""}, "url", ()),
    ("amocrm.settings", {"sok": "ok", "url": "http://evil.example.com/x"}, "url", ()),
    ("amocrm.settings", {**SETTINGS, "client_id": ""}, "client_id", ()),
    ("amocrm.settings", {**SETTINGS, "client_id": "a b"}, "client_id", ()),
    ("amocrm.settings", {**SETTINGS, "redirect_uri": ""}, "redirect_uri", ()),
    ("amocrm.settings", {**SETTINGS, "redirect_uri": "https://billing.example.com/other"}, "redirect_uri",
     ()),
    ("amocrm.settings", {**SETTINGS, "code": ""}, "code", ()),
    ("amocrm.settings", {**SETTINGS, "billmgr_url": "http://billing.example.com"}, "billmgr_url", ()),
    ("amocrm.settings", {**SETTINGS, "billmgr_url": "https://a:b@billing.example.com/?x=1"}, "billmgr_url",
     ()),
    ("amocrm.settings", {**SETTINGS, "code": "123"}, "client_secret", ()),
    ("amocrm.conditions.edit", {"sok": "ok", "kind": "999"}, "kind", ("999",)),
    ("amocrm.conditions.edit", {"sok": "ok", "kind": "lead", "value": "999"}, "value", ("999",)),
    ("amocrm.conditions.edit", {"sok": "ok", "kind": "lead", "value": "service.cost", "validator": "999"},
     "validator", ("999",)),
    ("amocrm.conditions.edit", {"sok": "ok", "kind": "lead", "value": "service.cost", "validator": "greater"},
     "argument", ()),
    ("amocrm.conditions.edit", {"sok": "ok", "kind": "lead", "value": "service.cost", "validator": "greater",
                                "argument": "пять"}, "argument", ("пять",)),
    ("amocrm.conditions.edit", {"elid": "lead:999"}, None, ("lead:999",)),
    ("amocrm.tags.edit", {"sok": "ok", "kind": "lead", "tag": " "}, "tag", ()),
    ("amocrm.tags.edit", {"sok": "ok", "kind": "999", "tag": "тег"}, "kind", ("999",)),
    ("amocrm.tags.edit", {"sok": "ok", "kind": "lead", "tag": "тег", "c2_value": "service.cost"},
     "c2_validator", ()),
    ("amocrm.tags.edit", {"sok": "ok", "kind": "lead", "tag": "тег", "c1_value": "service.cost",
                          "c1_validator": "greater"}, "c1_argument", ()),
    ("amocrm.tags.delete", {}, None, ()),
    ("amocrm.tags.delete", {"elid": "t999"}, None, ("t999",)),
    ("amocrm.conditions.delete", {"elid": "999:x"}, None, ("999:x",)),
    ("amocrm.fields.delete", {}, None, ()),
    ("amocrm.pipelines.delete", {"elid": "p999"}, None, ("p999",)),
    ("amocrm.pipelines.up", {}, None, ()),
    ("amocrm.pipelines.down", {"elid": "p999"}, None, ("p999",)),
    ("amocrm.syncsettings", {"sok": "ok", "responsible_user_id": "0"}, "responsible_user_id", ("0",)),
    ("amocrm.syncsettings", {"sok": "ok", "rate_limit": "99", "batch_size": "50"}, "rate_limit", ()),
    ("amocrm.syncsettings", {"sok": "ok", "rate_limit": "5", "batch_size": "0"}, "batch_size", ()),
    ("amocrm.syncsettings", {"sok": "ok", "responsible_user_id": "77", "rate_limit": "5", "batch_size": "50"},
     "responsible_user_id", ()),
    ("amocrm.resync", {}, None, ()),
    ("amocrm.resync", {"elid": "lead:x"}, None, ("lead:x",)),
    ("amocrm.unlink", {"elid": "999:1"}, None, ("999:1",)),
    ("amocrm.resync_all", {"sok": "ok"}, None, ()),
    ("amocrm.retry_failed", {}, None, ()),
    ("amocrm.retry_failed", {"sok": "ok"}, None, ()),
    ("amocrm.status", {}, None, ()),
    ("amocrm.check", {}, None, ()),
    ("amocrm.bindings", {}, None, ()),
    ("amocrm.fields.edit", {}, None, ()),
    ("amocrm.pipelines.edit", {}, None, ()),
    ("amocrm.nope", {}, None, ("amocrm.nope",)),
)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("func", "params", "field", "echoed"), WITHOUT_AMOCRM,
                         ids=[f"{c[0]}-{c[2] or n}" for n, c in enumerate(WITHOUT_AMOCRM)])
def test_errors_without_amocrm_or_a_database(mgr5_root: Path, lang: str, func: str, params: Dict[str, str],
                                            field: Optional[str], echoed: Tuple[str, ...]) -> None:
    check(ui(func, params, lang=lang), lang, func, field, echoed)


@pytest.mark.parametrize("lang", LANGS)
def test_access_bad_documents_and_a_broken_config_file(mgr5_root: Path, lang: str) -> None:
    check(ui("amocrm.settings", lang=lang, auth_level=16), lang, "amocrm.settings")
    hostile = '<?xml version="1.0"?><!DOCTYPE doc [<!ENTITY x "y">]><doc>&x;</doc>'
    run = run_ui({"func": "amocrm.tags"}, hostile, lang=lang, auth_level=30, auth_user="admin")
    check(etree.fromstring(run.stdout, safe_parser()), lang, "amocrm.tags")
    (mgr5_root / "etc/amocrm/amocrm.conf").write_text(json.dumps({"version": 1, "fields": [{"id": "f1"}]}))
    text = check(ui("amocrm.tags", lang=lang), lang, "amocrm.tags")
    assert "fields.0" in text   # where in the file, in both languages


# --------------------------------------------------------------------------- against amoCRM
def authorize(amocrm_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the settings form does, through the facade (this process talks to the emulator too)."""
    from billmgr_amocrm import service

    integration = amocrm_emulator.control.new_integration(redirect_uri=REDIRECT)
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    service.authorize(amocrm_emulator.url, integration["client_id"], integration["client_secret"], REDIRECT,
                      integration["auth_code"])


def test_authorization_failures_speak_the_page_language(mgr5_root: Path, sandbox_db: Any,
                                                        amocrm_emulator: Any) -> None:
    integration = amocrm_emulator.control.new_integration(redirect_uri=REDIRECT)
    base = {"sok": "ok", "url": amocrm_emulator.url, "client_id": integration["client_id"],
            "client_secret": integration["client_secret"], "redirect_uri": REDIRECT}
    ids = (integration["client_id"], amocrm_emulator.url)
    for lang in LANGS:
        # not authorized yet: the forms that need amoCRM's catalog and the check say so
        check(ui("amocrm.fields.edit", lang=lang, env=LOOPBACK), lang, "amocrm.fields.edit")
        check(ui("amocrm.check", lang=lang, env=LOOPBACK), lang, "amocrm.check")
        wrong_code = ui("amocrm.settings", {**base, "code": "0000"}, lang=lang, env=LOOPBACK)
        check(wrong_code, lang, "amocrm.settings", "code", ids)
        wrong_key = ui("amocrm.settings", {**base, "client_secret": "0000", "code": integration["auth_code"]},
                       lang=lang, env=LOOPBACK)
        text = check(wrong_key, lang, "amocrm.settings", echoed=ids)
        assert_names(text, label("amocrm.settings", "client_secret", lang))
        nowhere = ui("amocrm.settings", {**base, "url": "http://127.0.0.1:9", "code": "123"}, lang=lang,
                     env=LOOPBACK)
        check(nowhere, lang, "amocrm.settings", echoed=ids)


def test_amocrm_backed_forms_and_stops_speak_the_page_language(
        mgr5_root: Path, sandbox_db: Any, amocrm_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    authorize(amocrm_emulator, monkeypatch)
    amocrm_emulator.control.deactivate_user(504147)                # before the catalog is fetched and cached
    ui("amocrm.fields.edit", {"kind": "contact"}, env=LOOPBACK)
    cached = json.loads((mgr5_root / "var/amocrm/catalog.json").read_text())
    select = next(f for f in cached["fields"]["contacts"] if f["type"] == "select" and f.get("enums"))
    first, second = cached["pipelines"][:2]
    own = {s["id"] for s in first["_embedded"]["statuses"]}
    foreign = next(s["id"] for s in second["_embedded"]["statuses"] if s["id"] not in own)
    field = {"sok": "ok", "kind": "contact", "field_id": str(select["id"])}
    cases: Sequence[Case] = (
        ("amocrm.fields.edit", {"sok": "ok", "kind": "contact", "field_id": "1"}, "field_id", ("1",)),
        ("amocrm.fields.edit", {**field, "value": "999"}, "value", ("999",)),
        ("amocrm.fields.edit", {**field, "value": "client.country", "enum_map": "1 = 999999"}, "enum_map",
         ("999999",)),
        ("amocrm.pipelines.edit", {"sok": "ok", "pipeline_id": "1"}, "pipeline_id", ("1",)),
        ("amocrm.pipelines.edit", {"sok": "ok", "pipeline_id": str(first["id"]), "status_id": str(foreign)},
         "status_id", (str(foreign),)),
        ("amocrm.syncsettings", {"sok": "ok", "responsible_user_id": "999999", "rate_limit": "5",
                                 "batch_size": "50"}, "responsible_user_id", ("999999",)),
    )
    for lang in LANGS:
        for func, params, field, echoed in cases:
            check(ui(func, params, lang=lang, env=LOOPBACK), lang, func, field, echoed)
    # a deactivated responsible user, by the amoCRM user's id
    for lang in LANGS:
        doc = ui("amocrm.syncsettings", {"sok": "ok", "responsible_user_id": "504147", "rate_limit": "5",
                                         "batch_size": "50"}, lang=lang, env=LOOPBACK)
        check(doc, lang, "amocrm.syncsettings", "responsible_user_id", ("504147",))
    # amoCRM stopped serving the account, then the tokens were refused: the check says so in both languages
    state = mgr5_root / "var/amocrm/client_state.json"
    state.write_text(json.dumps({"stop": {"reason": "blocked", "status": 403, "detail": "Доступ запрещён",
                                          "since": 9e9, "last_probe": 9e9}}))
    for lang in LANGS:
        check(ui("amocrm.check", lang=lang, env=LOOPBACK), lang, "amocrm.check")
    state.write_text(json.dumps({"reauth": {"reason": "amoCRM refused the refresh token",
                                            "code": "auth_revoked", "params": {"status": 400}, "since": 0}}))
    for lang in LANGS:
        check(ui("amocrm.check", lang=lang, env=LOOPBACK), lang, "amocrm.check")
