"""Scenarios 10 (part) and 11: hostile input to the handlers, and canary secrets that must never
leak into a log, an error message, a failed-state row or panel output."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.amocrm.urls import parse_account_url
from billmgr_amocrm.domain import Kind
from tests.harness import run_addon

from .support import ProofRig

XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE doc [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
       b"<doc><elid>&x;</elid></doc>")
LAUGHS = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
                     for n in range(1, 10))
          + b"]>\n<doc>&lol9;</doc>")
HUGE = b"<doc>" + b"x" * (40 * 1024 * 1024) + b"</doc>"
HOSTILE_DOCS = {"xxe": XXE, "billion-laughs": LAUGHS, "huge": HUGE,
                "not-utf8": b"<doc>\xff\xfe\xfa</doc>", "empty": b""}
SQL_INJECTION = "1' OR '1'='1; DROP TABLE amocrm_queue; --"
# The handlers say "#!/usr/bin/env python3": the project's interpreter (with lxml, pydantic)
# must come first on PATH, or they would only report a broken install.
PANEL_ENV = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def every_text_under(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file() and path.name not in ("client_secret", "access_token", "refresh_token"):
            chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


@pytest.mark.parametrize("name", sorted(HOSTILE_DOCS))
def test_hostile_documents_to_the_hook_and_the_panel_are_handled_safely(name: str, mgr5_root: Path) -> None:
    doc = HOSTILE_DOCS[name]
    hook = run_addon("amocrm_event", {"func": "user.edit", "elid": "1", "sok": "ok"}, doc,
                     event_type="after", timeout=30, extra=PANEL_ENV)
    assert hook.returncode == 0
    assert hook.stdout == (doc or hook.stdout) and hook.stdout      # echoed byte for byte (or a minimal doc)
    ui = run_addon("amocrm_ui", {"func": "amocrm.status"}, doc, timeout=30, extra=PANEL_ENV)
    assert ui.returncode == 0 and ui.stdout.lstrip().startswith(b"<?xml")
    assert b"root:x:0:0" not in ui.stdout and b"lollollol" not in ui.stdout
    if name in ("xxe", "billion-laughs", "huge"):
        assert b"<error" in ui.stdout, ui.text[:300]


def test_sql_injection_strings_reach_sql_only_as_values(proof_rig: ProofRig) -> None:
    rig = proof_rig
    rig.enqueue_everything()
    rig.drain()
    ui = run_addon("amocrm_ui", {"func": "amocrm.bindings", "search": SQL_INJECTION, "state": "synced"},
                   "<doc/>", extra=PANEL_ENV)
    assert ui.returncode == 0 and ui.stdout.lstrip().startswith(b"<?xml")
    assert b"<error" not in ui.stdout, ui.text[:400]
    page = service.bindings(search=SQL_INJECTION, app=rig.app)
    assert page.total == 0
    with pytest.raises(service.ServiceError):
        service.resync(SQL_INJECTION, [1], app=rig.app)
    assert rig.sql("SELECT COUNT(*) FROM amocrm_queue")[0][0] == 0      # the table is still there
    assert len(rig.links(Kind.CONTACT)) > 0


@pytest.mark.parametrize("url", ["https://evil.example/", "https://x.amocrm.ru.evil.com",
                                 "https://x.amocrm.ru@evil.com", "http://x.amocrm.ru"])
def test_foreign_account_urls_are_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", raising=False)
    from billmgr_amocrm.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_account_url(url)


def test_a_loose_client_secret_file_is_refused_with_a_clear_message(proof_rig: ProofRig) -> None:
    from billmgr_amocrm.bootstrap import client_secret
    from billmgr_amocrm.errors import Reauthorize

    secret = proof_rig.paths.client_secret
    os.chmod(secret, 0o644)
    try:
        with pytest.raises(Reauthorize) as exc:
            client_secret(proof_rig.paths).read()
        assert str(secret) in str(exc.value)
        assert service.status(app=proof_rig.app).queue_depth == 0     # the status screen still works
    finally:
        os.chmod(secret, stat.S_IRUSR | stat.S_IWUSR)


def test_loose_token_files_are_refused(proof_rig: ProofRig) -> None:
    token = proof_rig.paths.refresh_token
    os.chmod(token, 0o644)
    try:
        with pytest.raises(service.ServiceError) as exc:
            service.check_connection(app=proof_rig.app)
        assert str(token) in exc.value.message_en
    finally:
        os.chmod(token, stat.S_IRUSR | stat.S_IWUSR)


def test_canary_secrets_never_leak(proof_rig_factory: Any) -> None:
    rig: ProofRig = proof_rig_factory(clients=10, services=20)
    canaries = [rig.paths.client_secret.read_text().strip(), rig.paths.access_token.read_text().strip(),
                rig.paths.refresh_token.read_text().strip(), rig.emulator.integration["auth_code"]]
    assert all(len(c) >= 16 for c in canaries)
    rig.control.add_fault("status", path="^/oauth2/", status=500, count=1)
    rig.control.add_fault("status", path="^/api/v4/contacts$", method="POST", status=400, count=1)
    rig.enqueue_everything()
    rig.control.advance(2 * 86400)                 # a refresh happens (after a 401)
    rig.drain()
    run = rig.run_worker()
    outputs = [run.stdout, run.stderr]
    for func in ("amocrm.status", "amocrm.settings", "amocrm.check", "amocrm.bindings"):
        ui = run_addon("amocrm_ui", {"func": func}, "<doc/>", extra=PANEL_ENV)
        outputs += [ui.text, ui.stderr.decode("utf-8", "replace")]
    failed = rig.sql("SELECT COALESCE(last_error, '') FROM amocrm_queue")
    text = "\n".join(outputs + [str(r[0]) for r in failed] + [every_text_under(rig.root)])
    new_tokens = [rig.paths.access_token.read_text().strip(), rig.paths.refresh_token.read_text().strip()]
    for canary in canaries + new_tokens:
        assert canary not in text, "a secret leaked"
