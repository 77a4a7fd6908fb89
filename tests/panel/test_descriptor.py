"""The descriptor is well-formed, admin-only, complete in Russian and English, and matches the handler."""

from __future__ import annotations

from typing import Dict, Set

import pytest
from lxml import etree

from billmgr_amocrm import unverified
from billmgr_amocrm.panel import i18n
from billmgr_amocrm.panel.main import FUNCTIONS
from tests.panel.support import descriptor

ADMIN = "admin+"


@pytest.fixture(scope="module")
def root() -> etree._Element:
    return descriptor()


def messages(root: etree._Element, lang: str) -> Dict[str, Set[str]]:
    block = next(b for b in root.findall("lang") if b.get("name") == lang)
    return {
        m.get("name"): {msg.get("name") for msg in m.findall("msg") if (msg.text or "").strip()}
        for m in block.findall("messages")
    }


def test_parses_with_a_safe_parser_and_has_no_doctype(root: etree._Element) -> None:
    assert root.tag == "mgrdata"
    assert root.getroottree().docinfo.doctype == ""


def test_plugin_block_names_the_group_and_describes_itself_in_both_languages(root: etree._Element) -> None:
    plugin = root.find("plugin")
    assert plugin is not None and plugin.get("name") == "amocrm"
    assert plugin.findtext("group") == unverified.PLUGIN_GROUP
    found = {(m.get("name"), m.get("lang")) for m in plugin.findall("msg") if (m.text or "").strip()}
    assert found >= {(n, lang) for n in ("desc_short", "desc_full") for lang in ("ru", "en")}


def test_event_handler_hooks_exactly_the_sync_events_after_the_fact(root: etree._Element) -> None:
    handler = next(h for h in root.findall("handler") if h.get("name") == "amocrm_event")
    assert handler.get("type") == "xml"
    events = handler.findall("event")
    assert tuple(e.get("name") for e in events) == unverified.HOOKED_EVENTS
    assert all(e.get("after") == "yes" for e in events)


def test_every_declared_func_has_a_handler_and_every_handler_is_declared(root: etree._Element) -> None:
    handler = next(h for h in root.findall("handler") if h.get("name") == "amocrm_ui")
    assert handler.get("type") == "xml"
    declared = [f.get("name") for f in handler.findall("func")]
    assert len(declared) == len(set(declared))
    assert set(declared) == set(FUNCTIONS)
    assert all(f.get("level") == ADMIN for f in handler.findall("func"))


def test_every_function_that_shows_something_has_metadata(root: etree._Element) -> None:
    metadata = {m.get("name"): m for m in root.findall("metadata")}
    for func, (module, _) in FUNCTIONS.items():
        if module in ("lists", "forms", "ruleforms", "catalogforms", "report") or func in (
            "amocrm.check",
            "amocrm.resync_all",
            "amocrm.retry_failed",
        ):
            assert func in metadata, func
    for name, meta in metadata.items():
        assert name in FUNCTIONS, name
        assert meta.get("level") == ADMIN, name
        assert meta.get("type") in ("form", "list", "report")


def test_the_menu_puts_the_bindings_list_under_integration_for_admins_only(root: etree._Element) -> None:
    menu = root.find("mainmenu")
    assert menu is not None and menu.get("level") == ADMIN
    group = menu.find("node")
    assert group is not None and group.get("name") == unverified.MAINMENU_INTEGRATION_NODE
    item = group.find("node")
    assert item is not None and item.get("action") == "amocrm.bindings" and item.get("type") == "list"


def test_bindings_toolbar_has_every_required_button(root: etree._Element) -> None:
    meta = next(m for m in root.findall("metadata") if m.get("name") == "amocrm.bindings")
    funcs = {b.get("func") for b in meta.iter("toolbtn")}
    assert funcs >= {
        "amocrm.settings",
        "amocrm.conditions",
        "amocrm.tags",
        "amocrm.fields",
        "amocrm.pipelines",
        "amocrm.resync",
        "amocrm.resync_all",
        "amocrm.unlink",
        "amocrm.retry_failed",
        "amocrm.check",
        "amocrm.status",
        "amocrm.report",
    }
    assert all(b.get("level") == ADMIN for b in root.iter("toolbtn"))
    assert all(b.get("func") in FUNCTIONS for b in root.iter("toolbtn"))


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_label_column_button_and_menu_caption_has_text(root: etree._Element, lang: str) -> None:
    msgs = messages(root, lang)
    missing = []
    assert "menu_amocrm.bindings" in msgs.get("desktop", set())
    for meta in root.findall("metadata"):
        name = meta.get("name")
        have = msgs.get(name, set())
        if "title" not in have:
            missing.append(f"{name}: title")
        for field in meta.iter("field"):
            field_name = field.get("name")
            if field.find("input[@type='hidden']") is not None:
                continue   # shows nothing: no label, no hint
            for key in (field_name, f"hint_{field_name}"):
                if key not in have:
                    missing.append(f"{name}: {key}")
            typed_in = (
                field.find("input[@type='text']") is not None and field.find("input[@readonly]") is None
            )
            if typed_in and name.endswith(("settings", "filter")) and f"placeholder_{field_name}" not in have:
                missing.append(f"{name}: placeholder_{field_name}")
        for col in meta.iter("col"):
            if col.get("name") not in have:
                missing.append(f"{name}: column {col.get('name')}")
        for button in meta.iter("toolbtn"):
            for key in (f"short_{button.get('name')}", f"hint_{button.get('name')}"):
                if key not in have:
                    missing.append(f"{name}: {key}")
    assert not missing, missing


def test_russian_and_english_blocks_have_the_same_keys(root: etree._Element) -> None:
    assert messages(root, "ru") == messages(root, "en")


def test_every_handler_message_exists_in_both_languages() -> None:
    for key, texts in i18n.MESSAGES.items():
        assert texts.get("ru") and texts.get("en"), key


def test_every_form_that_saves_amocrm_conf_carries_the_version_it_was_opened_from(
        root: etree._Element) -> None:
    saving = ("amocrm.syncsettings", "amocrm.notesettings",
              "amocrm.conditions.edit", "amocrm.tags.edit", "amocrm.fields.edit",
              "amocrm.pipelines.edit")
    for name in saving:
        meta = root.find(f"metadata[@name='{name}']")
        assert meta is not None and meta.find("form/field[@name='conf_version']/input[@type='hidden']") \
            is not None, name
