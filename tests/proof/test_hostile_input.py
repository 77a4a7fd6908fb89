"""Scenario 10 (the rest; the hostile documents live in test_secrets.py): SQL-injection strings
in the CLI's ids and in BILLmanager names, and account / redirect URLs or an amoCRM redirect
that point at a foreign host. Each is refused or handled safely with a clear message, and
nothing already queued or linked is lost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.boundaccount import CURSOR as BOUND_ACCOUNT
from billmgr_amocrm.domain import Kind
from tests.harness import run_addon

from .support import REPO, ProofRig

CLI = [sys.executable, str(REPO / "sbin" / "amocrm")]
DROP = "1; DROP TABLE item"
# (argv, what argparse says): an id or a kind that is not one never reaches service.py
CLI_INJECTIONS: Tuple[Tuple[List[str], str], ...] = (
    (["resync", "lead", DROP], "invalid int value"),
    (["resync", "contact", "1 OR 1=1"], "invalid int value"),
    (["resync", "lead; DROP TABLE item", "1"], "invalid choice"),
    (["unlink", "company", "1'--"], "invalid int value"),
    (["retry-failed", "--ids", "1); DELETE FROM amocrm_queue; --"], "invalid int value"),
    (["failed", "--limit", "1 UNION SELECT password FROM user"], "invalid int value"),
)
HOSTILE_NAMES = (
    "Robert'); DROP TABLE item; --",
    'ООО "Кавычки" \\"экранированные\\"',
    "back\\slash\\' and 'quote",
    "100% _под_ LIKE \\%",
    "'; UPDATE account SET name='pwned' WHERE '1'='1",
)
FOREIGN_URLS = ("https://x.amocrm.ru.evil.com", "https://evil.example/", "http://amocrm.ru@evil.com",
                "https://x.amocrm.ru@evil.com", "https://x.amocrm.ru:8443", "https://x.amocrm.ru/../evil")
FOREIGN_REDIRECTS = ("http://billing.example.com/billmgr", "https://user@evil.com/billmgr",
                     "https://evil.example/billmgr?next=https://evil.example",
                     "https://evil.example/callback", "javascript:alert(1)")
GOOD_REDIRECT = "https://billing.example.com/billmgr"
PANEL_ENV = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def panel(params: Dict[str, str], stdin: str = "<doc/>", **kw: Any) -> Any:
    """The panel handler under the project's interpreter (``#!/usr/bin/env python3``)."""
    return run_addon("amocrm_ui", params, stdin, extra=PANEL_ENV, **kw)


def table_counts(rig: ProofRig) -> Dict[str, int]:
    tables = ("account", "user", "profile", "item", "amocrm_queue", *(k.link_table for k in Kind))
    return {t: int(rig.sql(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}  # noqa: S608 - fixed names


def test_sql_injection_in_cli_ids_and_panel_elids_is_refused_before_any_sql(
        proof_rig_factory: Callable[..., ProofRig]) -> None:
    rig = proof_rig_factory(clients=5, services=5)
    rig.enqueue_everything()
    rig.drain()
    account = rig.accounts_with_user()[0]
    rig.sandbox.edit_client(account, realname="Ждёт в очереди")
    rig.enqueue(Kind.CONTACT, account, "edit")          # one queued event that must survive
    before = table_counts(rig)
    for argv, says in CLI_INJECTIONS:
        run = subprocess.run(CLI + argv, capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 2, (argv, run.stdout, run.stderr)
        assert says in run.stderr and "usage: amocrm" in run.stderr, (argv, run.stderr)
    for func, elid in (("amocrm.resync", f"contact:{DROP}"), ("amocrm.unlink", "lead:1 OR 1=1"),
                       ("amocrm.resync", "company:1); DELETE FROM amocrm_queue; --"),
                       ("amocrm.unlink", "contact:0x1")):
        ui = panel({"func": func, "elid": elid, "sok": "ok"})
        assert ui.returncode == 0 and "<error" in ui.text, (func, ui.text[:400])
    assert table_counts(rig) == before
    assert rig.depth() == 1
    rig.drain()
    audit = rig.audit()
    assert audit.ok, audit.summary()


def test_hostile_names_reach_amocrm_verbatim_and_nothing_else(
        proof_rig_factory: Callable[..., ProofRig]) -> None:
    rig = proof_rig_factory(clients=3, services=3)
    before = table_counts(rig)
    for n, name in enumerate(HOSTILE_NAMES):
        account = rig.sandbox.add_client(name=name, realname=name, email=f"hostile{n}@example.com").account_id
        rig.enqueue(Kind.CONTACT, account, "edit")
        payer = rig.sandbox.add_payer(account, name=name)
        rig.enqueue(Kind.COMPANY, payer, "edit")
        item = rig.sandbox.open_service(account, params={"domain": f"h{n}.example.ru"})
        rig.enqueue(Kind.LEAD, item, "open")
    rig.drain()
    audit = rig.audit()                              # names and prices as BILLmanager holds them
    assert audit.ok, audit.summary()
    names = {e["name"] for e in rig.live_entities(Kind.COMPANY).values()}
    assert set(HOSTILE_NAMES) <= names, sorted(names)
    after = table_counts(rig)
    for table in ("account", "profile", "item"):
        assert after[table] == before[table] + len(HOSTILE_NAMES)
    assert not rig.sql("SELECT id FROM account WHERE name = 'pwned'")
    page = service.bindings(search="%", app=rig.app)   # a LIKE wildcard is a literal character
    assert page.total == 0


@pytest.mark.parametrize("url", FOREIGN_URLS)
def test_foreign_account_urls_are_refused_by_the_panel_and_the_cli(url: str, mgr5_root: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", raising=False)
    ui = panel({"func": "amocrm.settings", "sok": "ok", "url": url, "client_id": "abc-123",
                "client_secret": "s" * 32, "redirect_uri": GOOD_REDIRECT, "code": "c" * 40}, lang="en")
    assert ui.returncode == 0 and "<error" in ui.text and "url" in ui.text, ui.text[:400]
    assert "amocrm.ru" in ui.text                     # says what an account address looks like
    cli = subprocess.run(CLI + ["authorize", "--url", url, "--client-id", "abc-123", "--redirect-uri",
                                GOOD_REDIRECT, "--code", "c" * 40], input="s" * 32 + "\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 1 and cli.stderr.startswith("error: "), (cli.returncode, cli.stderr)
    assert "s" * 32 not in cli.stderr + cli.stdout + ui.text
    etc = mgr5_root / "etc" / "amocrm"
    assert not (etc / "client_secret").exists() and not (etc / "refresh_token").exists()


@pytest.mark.parametrize("redirect", FOREIGN_REDIRECTS)
def test_malformed_or_foreign_redirect_uris_are_refused(redirect: str, mgr5_root: Path) -> None:
    ui = panel({"func": "amocrm.settings", "sok": "ok", "url": "https://x.amocrm.ru", "client_id": "abc-123",
                "client_secret": "s" * 32, "redirect_uri": redirect, "code": "c" * 40}, lang="en")
    assert ui.returncode == 0 and "<error" in ui.text and "redirect_uri" in ui.text, ui.text[:400]
    assert not (mgr5_root / "etc" / "amocrm" / "client_secret").exists()


class Recorder(BaseHTTPRequestHandler):
    """Answers every request: a redirect to ``target`` (``target`` set) or a 200 (the foreign host)."""

    target = ""
    seen: List[Tuple[str, str, str]] = []

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        if self.target:
            self.send_response(302)
            self.send_header("Location", self.target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b'{"id": 1, "name": "evil", "subdomain": "evil"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirect_to_foreign_host() -> Iterator[Tuple[str, List[Any], List[Any]]]:
    """(redirector URL, requests it got, requests the foreign host got)."""
    servers = []
    logs: List[List[Any]] = []
    target = ""
    for _ in range(2):       # the foreign host first, then the redirector pointing at it
        handler: Any = type("Handler", (Recorder,), {"target": target, "seen": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        logs.append(handler.seen)
        target = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield target, logs[1], logs[0]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_an_amocrm_redirect_to_a_foreign_host_is_not_followed_and_loses_nothing(
        proof_rig_factory: Callable[..., ProofRig], redirect_to_foreign_host: Tuple[str, List[Any], List[Any]]
        ) -> None:
    redirector, at_redirector, at_foreign = redirect_to_foreign_host
    rig = proof_rig_factory(clients=3, services=3)
    rig.enqueue_everything()
    rig.drain()
    meta_path = rig.paths.token_meta
    real_meta = meta_path.read_text(encoding="utf-8")
    meta = json.loads(real_meta)
    # the account's address now answers with a redirect to another host (hijacked DNS, a proxy);
    # the redirector stands in for that address, so it is the account the bindings belong to
    meta_path.write_text(json.dumps(dict(meta, base_url=redirector)), encoding="utf-8")
    rig.rebuild()
    bound = rig.app.store.get_cursor(BOUND_ACCOUNT)
    rig.app.store.set_cursor(BOUND_ACCOUNT, redirector)
    account = rig.accounts_with_user()[0]
    rig.sandbox.edit_client(account, realname="Во время перенаправления")
    rig.enqueue(Kind.CONTACT, account, "edit")
    with pytest.raises(service.ServiceError) as refused:
        service.check_connection(app=rig.app)
    assert "302" in refused.value.message_en, refused.value.message_en
    rig.engine().run_pass()
    assert at_redirector, "the module did not talk to the redirecting host at all"
    assert at_foreign == [], "the module followed a redirect to a foreign host"
    rows = rig.sql("SELECT state, last_error FROM amocrm_queue WHERE kind = 'contact'")
    assert len(rows) == 1
    state, error = rows[0]
    assert state == "pending" and "302" in str(error), rows        # kept queued, with the reason

    meta_path.write_text(real_meta, encoding="utf-8")           # the address is right again
    rig.rebuild()
    rig.app.store.set_cursor(BOUND_ACCOUNT, bound or "")
    service.retry_failed(app=rig.app)
    rig.make_due()
    rig.drain()
    audit = rig.audit()
    assert audit.ok, audit.summary()
