"""Every function refuses non-admins; hostile documents get a safe error, never a crash or a leak."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from billmgr_amocrm import unverified
from billmgr_amocrm.panel.main import FUNCTIONS
from billmgr_amocrm.panel.protocol import MAX_DOC_BYTES
from tests.panel.support import error_text, golden, run_ui, safe_parser, skeleton, ui


def test_every_function_refuses_a_client_and_logs_it(mgr5_root: Path) -> None:
    level = unverified.ADMIN_MIN_LEVEL - 1
    for func in FUNCTIONS:
        doc = ui(func, {"elid": "lead:1", "sok": "ok"}, auth_level=level)
        err = doc.find("error")
        assert err is not None and err.get("type") == "access", func
        assert doc.find("ok") is None and doc.find("elem") is None
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert log.count("result=denied") == len(FUNCTIONS)
    golden("access_denied_en", ui("amocrm.settings", auth_level=16, lang="en"))


@pytest.mark.parametrize(("level", "admin"), [(16, False), (28, False), (29, True), (30, True)])
def test_an_administrator_is_auth_level_29_or_above(mgr5_root: Path, level: int, admin: bool) -> None:
    # 30 root, 29 administrator, 16 client; 28 is a department row in `user`, never a person
    err = ui("amocrm.status", auth_level=level).find("error")
    assert (err is None or err.get("type") != "access") is admin, level
    assert unverified.ADMIN_MIN_LEVEL == 29


def test_an_unknown_function_is_an_error_not_a_crash(mgr5_root: Path) -> None:
    doc = ui("amocrm.nope")
    assert "amocrm.nope" in error_text(doc)


SECRET_FILE = "/etc/hostname"
HOSTILE = {
    "xxe": f'<?xml version="1.0"?><!DOCTYPE doc [<!ENTITY x SYSTEM "file://{SECRET_FILE}">]><doc>&x;</doc>',
    "billion_laughs": '<?xml version="1.0"?><!DOCTYPE doc [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
    + "]><doc>&i;</doc>",
    "doctype_lowercase": "<!doctype doc><doc/>",
    "huge": "<doc>" + "x" * (MAX_DOC_BYTES + 10) + "</doc>",
    "non_utf8": b'<?xml version="1.0" encoding="UTF-8"?><doc>\xff\xfe\xc3</doc>',
    "empty": b"",
    "not_xml": "hello",
    "wrong_root": "<mgrdata/>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_documents_get_a_safe_error(mgr5_root: Path, name: str) -> None:
    run = run_ui({"func": "amocrm.settings"}, HOSTILE[name], lang="en")
    assert run.returncode == 0
    doc = etree.fromstring(run.stdout, safe_parser())
    assert doc.find("error") is not None and doc.find("ok") is None
    assert "Bad request" in error_text(doc)
    if name == "xxe":
        assert Path(SECRET_FILE).read_text().strip() not in run.text
    assert len(run.stdout) < 4096  # nothing echoed back from the input


def test_an_oversized_parameter_is_refused(mgr5_root: Path) -> None:
    run = run_ui({"func": "amocrm.tags", "search": "x" * 70_000}, skeleton("amocrm.tags"))
    doc = etree.fromstring(run.stdout, safe_parser())
    assert doc.find("error") is not None


def test_language_comes_from_the_cookie_and_param_lang_wins(mgr5_root: Path) -> None:
    en = ui("amocrm.nope", lang="en")
    assert error_text(en).startswith("Unknown")
    ru = ui("amocrm.nope", {"lang": "ru"}, lang="en")
    assert error_text(ru).startswith("Неизвестная")
