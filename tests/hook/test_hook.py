"""addon/amocrm_event run as the panel runs it: echo always, record real saves only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ADDON_DIR, panel_env, run_addon

HOOK = "amocrm_event"
SAVED = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="account.edit"><ok/><id>42</id></doc>\n'


def spooled(root: Path) -> list[dict]:
    spool_dir = root / "var" / "amocrm" / "spool"
    if not spool_dir.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(spool_dir.glob("*.json"))]


def test_a_save_is_echoed_and_recorded_without_secrets(mgr5_root: Path) -> None:
    params = {"func": "account.edit", "sok": "ok", "elid": "", "email": "client@example.com",
              "passwd": "S3cret-Passw0rd", "confirm": "S3cret-Passw0rd", "realname": "Ivan"}
    run = run_addon(HOOK, params, SAVED, auth_user="admin", auth_level=29)
    assert (run.returncode, run.stdout, run.stderr) == (0, SAVED, b"")
    (event,) = spooled(mgr5_root)
    assert event["func"] == "account.edit" and event["email"] == "client@example.com"
    assert event["doc_id"] == "42" and event["user"] == "admin" and event["level"] == 29
    assert set(event) <= {"v", "func", "elid", "plid", "su", "email", "profiletype", "doc_id", "ts", "user",
                          "level"}
    everything = b"".join(p.read_bytes() for p in mgr5_root.rglob("*") if p.is_file())
    assert b"S3cret-Passw0rd" not in everything and b"Ivan" not in everything


@pytest.mark.parametrize(("params", "doc"), [
    ({"func": "account.edit", "elid": "5"}, SAVED),                                     # form opened, no sok
    ({"func": "account.edit", "elid": "5", "sok": "ok"},
     b'<doc><error type="value" object="email"><msg>bad</msg></error></doc>'),          # the save failed
    ({"func": "account.edit", "elid": "5", "sok": "ok"}, b"<doc>\n<error/>\n</doc>"),
    ({"func": "payment.add", "elid": "5", "sok": "ok"}, SAVED),                         # not a hooked event
], ids=["form-open", "error", "empty-error", "other-func"])
def test_nothing_is_recorded_unless_a_hooked_save_succeeded(
        mgr5_root: Path, params: dict, doc: bytes) -> None:
    run = run_addon(HOOK, params, doc)
    assert (run.returncode, run.stdout) == (0, doc)
    assert spooled(mgr5_root) == []


def test_an_errors_element_is_not_an_error(mgr5_root: Path) -> None:
    doc = b"<doc><errors_count>0</errors_count><ok/></doc>"
    run = run_addon(HOOK, {"func": "service.postopen", "elid": "77", "sok": "ok"}, doc)
    assert run.stdout == doc
    assert [e["elid"] for e in spooled(mgr5_root)] == ["77"]


def test_bytes_are_echoed_exactly_even_when_not_utf8(mgr5_root: Path) -> None:
    doc = b'<?xml version="1.0" encoding="windows-1251"?>\n<doc>\xcf\xf0\xe8\xe2\xe5\xf2\x00\xff\r\n</doc>'
    run = run_addon(HOOK, {"func": "user.edit", "elid": "3", "sok": "ok"}, doc)
    assert (run.returncode, run.stdout) == (0, doc)


def test_empty_stdin_gets_a_minimal_valid_document(mgr5_root: Path) -> None:
    run = run_addon(HOOK, {"func": "register", "sok": "ok", "email": "new@example.com"}, b"")
    assert run.returncode == 0 and run.stdout.rstrip().endswith(b"<doc/>")
    assert [e["email"] for e in spooled(mgr5_root)] == ["new@example.com"]


def test_a_huge_document_is_echoed_whole(mgr5_root: Path) -> None:
    doc = b"<doc>" + b"<elem><id>1</id></elem>" * 300_000 + b"<error/></doc>"   # ~7 MB, error past the cap
    run = run_addon(HOOK, {"func": "service.postprolong", "elid": "9", "sok": "ok"}, doc)
    assert run.returncode == 0 and run.stdout == doc


def test_an_unwritable_spool_still_echoes_and_logs(mgr5_root: Path) -> None:
    (mgr5_root / "var" / "amocrm").write_text("a file where the spool directory should be")
    run = run_addon(HOOK, {"func": "account.edit", "elid": "5", "sok": "ok", "passwd": "Pw-123456"}, SAVED)
    assert (run.returncode, run.stdout, run.stderr) == (0, SAVED, b"")
    log = (mgr5_root / "var" / "amocrm_task.log").read_text()
    assert "amocrm_event ERROR hook: event account.edit elid='5' not recorded" in log
    assert "Pw-123456" not in log


def test_a_broken_install_still_echoes(tmp_path: Path, mgr5_root: Path) -> None:
    lonely = tmp_path / "amocrm_event"
    lonely.write_bytes((ADDON_DIR / HOOK).read_bytes())
    lonely.chmod(0o755)
    (tmp_path / "billmgr_amocrm").mkdir()                    # a half-copied package shadows any other
    (tmp_path / "billmgr_amocrm" / "__init__.py").write_text("raise ImportError('half-installed')\n")
    run = run_addon(lonely, {"func": "account.edit", "sok": "ok"}, SAVED, extra={"PYTHONPATH": ""})
    assert (run.returncode, run.stdout) == (0, SAVED)


def test_mysql_down_does_not_matter(mgr5_root: Path) -> None:
    (mgr5_root / "etc" / "billmgr.conf.d" / "db.conf").write_text(
        "DBHost 127.0.0.1\nDBPort 1\nDBUser root\nDBName billmgr\n")
    run = run_addon(HOOK, {"func": "service.postopen", "elid": "12", "sok": "ok"}, SAVED)
    assert (run.returncode, run.stdout) == (0, SAVED)
    assert [e["elid"] for e in spooled(mgr5_root)] == ["12"]


PROBE = """
import io, json, os, sys
sys.path.insert(0, sys.argv[1])
sys.stdin = io.TextIOWrapper(io.BytesIO(b"<doc><ok/></doc>"))
sys.stdout = io.TextIOWrapper(io.BytesIO())
before = set(sys.modules)
from billmgr_amocrm.hook import main
main()
sys.__stdout__.write(json.dumps(sorted(set(sys.modules) - before)))
"""


@pytest.mark.parametrize("sok", ["ok", ""], ids=["save", "form-open"])
def test_the_hook_imports_no_network_or_database_code(mgr5_root: Path, sok: str) -> None:
    env = panel_env({"func": "account.edit", "elid": "5", "sok": sok})
    proc = subprocess.run([sys.executable, "-S", "-c", PROBE, str(ADDON_DIR)], capture_output=True,
                          env=env, check=True)
    loaded = set(json.loads(proc.stdout))
    heavy = {"pymysql", "requests", "lxml", "pydantic", "urllib3", "socket", "ssl", "logging",
             "xml", "xml.etree", "pyexpat", "re", "billmgr_amocrm.db", "billmgr_amocrm.ports",
             "billmgr_amocrm.domain"}
    assert not loaded & heavy
    # Only a save pays for reading the document; the spool is written (and imported) by a child.
    assert ("billmgr_amocrm.hookdoc" in loaded) == bool(sok)
    assert "billmgr_amocrm.store.spool" not in loaded
    assert len(spooled(mgr5_root)) == (1 if sok else 0)


# After a wizard save BILLmanager nests a whole second <doc> (its own id, maybe an error) in the root.
WIZARD_SAVED = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="register">'
                '<doc func="account.edit"><id>5</id><error type="value"><msg>внутри</msg></error></doc>'
                "<ok/><id>42</id></doc>\n").encode()
NOTE_SAVED = (b'<doc func="account.edit"><note><![CDATA[Client wrote: <error>call me</error>]]></note>'
              b"<ok/></doc>")


def test_a_nested_doc_neither_fails_the_save_nor_lends_its_id(mgr5_root: Path) -> None:
    run = run_addon(HOOK, {"func": "register", "sok": "ok", "email": "new@example.com"}, WIZARD_SAVED)
    assert (run.returncode, run.stdout, run.stderr) == (0, WIZARD_SAVED, b"")
    (event,) = spooled(mgr5_root)
    assert (event["func"], event["doc_id"], event["email"]) == ("register", "42", "new@example.com")
    assert "elid" not in event   # a create: the new object's id is the root's own <id>


def test_error_text_inside_cdata_is_not_a_failed_save(mgr5_root: Path) -> None:
    run = run_addon(HOOK, {"func": "account.edit", "elid": "8", "sok": "ok"}, NOTE_SAVED)
    assert (run.returncode, run.stdout) == (0, NOTE_SAVED)
    assert [e["elid"] for e in spooled(mgr5_root)] == ["8"]


def test_a_create_without_an_id_anywhere_is_still_recorded(mgr5_root: Path) -> None:
    doc = b'<doc func="profile.edit"><ok/><doc><id>5</id></doc></doc>'
    run = run_addon(HOOK, {"func": "profile.edit", "plid": "3", "sok": "ok", "profiletype": "2"}, doc)
    assert (run.returncode, run.stdout) == (0, doc)
    (event,) = spooled(mgr5_root)
    assert (event["plid"], event["profiletype"]) == ("3", "2")
    assert "doc_id" not in event and "elid" not in event


@pytest.mark.parametrize("func", ["payment.setpaid", "payment.setcanceled", "payment.setfraud",
                                  "profile.delete"])
def test_actions_without_a_form_are_recorded_without_sok(mgr5_root: Path, func: str) -> None:
    # payment modules call them as actions (LocalQuery without sok), a delete is a list's button:
    # there is no form to open
    doc = b"<doc><ok/></doc>"
    run = run_addon(HOOK, {"func": func, "elid": "31"}, doc)
    assert (run.returncode, run.stdout) == (0, doc)
    assert [(e["func"], e["elid"]) for e in spooled(mgr5_root)] == [(func, "31")]


def test_a_refused_delete_is_not_recorded(mgr5_root: Path) -> None:
    doc = b'<doc><error type="exists" object="profile"><msg>has documents</msg></error></doc>'
    run = run_addon(HOOK, {"func": "profile.delete", "elid": "7"}, doc)
    assert (run.returncode, run.stdout) == (0, doc)
    assert spooled(mgr5_root) == []
