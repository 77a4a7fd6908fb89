"""End to end through an INSTALLED copy (issue 6, item 3).

The session's real install (``installed_root``: private venv, rewritten shebangs, stub
``sbin/mgrctl``) is pointed at a fresh sandbox BILLmanager database, then driven only
through its own executables, as subprocesses, the way an admin, cron and the panel do:

    R/sbin/amocrm authorize   ->  tokens 0600 in R/etc/amocrm
    R/sbin/amocrm_task --once ->  the initial export reaches the emulator, once per entity
    R/addon/amocrm_event      ->  the panel's document echoed byte for byte, the event spooled
    the cron entry's command  ->  the new lead is created and linked, the edit is sent
    R/addon/amocrm_ui         ->  amocrm.bindings lists the new binding

Nothing from the work tree runs in those processes: no PYTHONPATH, a neutral working
directory, and ``PYTHONVERBOSE`` shows where every module of the package was loaded from.
The shared install is left as it was found (db.conf, etc/amocrm, the spool).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import pytest
from lxml import etree

from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import KIND_ORDER, Kind
from billmgr_amocrm.markers import marker_identity, marker_value
from tests.amocrm_emulator import EmulatorHandle
from tests.fixtures.database import SANDBOX_TODAY, unique_db_name
from tests.harness import HandlerRun, run_addon
from tests.install.conftest import REPO, Host
from tests.panel.support import safe_parser, skeleton
from tests.sandbox import Sandbox, create_sandbox, drop_database
from tests.sandbox.dbconf import render_db_conf

# One xdist worker builds the session install and runs every test that uses it.
pytestmark = pytest.mark.xdist_group("install-session")

CLIENTS, SERVICES, SEED = 20, 60, 5
# What PYTHONVERBOSE adds to stderr; left out of failure messages.
VERBOSE_LINE = re.compile(r"^(#|import |Processing |Adding |Skipping |Python \d|Type \"help)")
TOKEN_FILES = ("access_token", "refresh_token", "token.json", "client_secret")
# What the panel hands an after-handler of service.postopen (type="xml"): its own result.
POSTOPEN_DOC = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="service.postopen">'
                "<elid>{item}</elid><ok/><name>VDS «Тест» 🚀 &amp; Co</name></doc>\n")
ACCOUNT_EDIT_DOC = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc func="account.edit"><ok/>'
                    "<elid>{account}</elid></doc>\n")


@dataclass(frozen=True)
class Rig:
    """The installed host pointed at a sandbox, an emulator, and how to run the host's commands."""

    host: Host
    sandbox: Sandbox
    emulator: EmulatorHandle
    cwd: Path

    def env(self) -> Dict[str, str]:
        """The environment cron or an admin's shell gives the module: nothing of the work tree."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PARAM_", "VIRTUAL_ENV")) and k != "MGR5_ROOT"}
        env.update(self.host.env())
        env["BILLMGR_AMOCRM_ALLOW_LOOPBACK"] = "1"  # the emulator is plain http on 127.0.0.1
        return env

    def run(self, executable: Path, *args: str, stdin: str = "",
            extra: Tuple[Tuple[str, str], ...] = ()) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(executable), *args], input=stdin, capture_output=True, text=True,
                              env={**self.env(), **dict(extra)}, cwd=self.cwd, timeout=120, check=False)
        if proc.returncode != 0:
            told = [line for line in proc.stderr.splitlines() if not VERBOSE_LINE.match(line)]
            pytest.fail(f"{executable.name} {' '.join(args[:1])} exited {proc.returncode}:\n"
                        f"{proc.stdout[-3000:]}\n" + "\n".join(told)[-3000:], pytrace=False)
        return proc

    def panel(self, executable: str, params: Dict[str, str], stdin: str) -> HandlerRun:
        return run_addon(self.host.addon(executable), params, stdin, base=self.env())

    def worker(self) -> subprocess.CompletedProcess:
        return self.run(self.host.sbin("amocrm_task"), "--once", extra=(("PYTHONVERBOSE", "1"),))

    def scheduled_worker(self) -> None:
        """The command of the cron entry the installer wrote, run as cron does (no MGR5_ROOT of ours)."""
        lines = [line for line in (self.host.cron_dir / "amocrm-task").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
        assert len(lines) == 1, lines
        command = lines[0].split(None, 6)[6]  # minute hour day month weekday user command
        env = {k: v for k, v in self.env().items() if k != "MGR5_ROOT"}
        proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, env=env,
                              cwd=self.cwd, timeout=120, check=False)
        if proc.returncode != 0:
            log = self.host.root / "var" / "amocrm_task.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            pytest.fail(f"the cron entry's command exited {proc.returncode}: {command}\n{tail}",
                        pytrace=False)

    def count(self, sql: str) -> int:
        return int(self.sandbox.query(sql)[0][0])


@pytest.fixture
def rig(installed_root: Host, db_server: DbSettings,
        amocrm_emulator_factory: Callable[..., EmulatorHandle],
        tmp_path: Path) -> Iterator[Rig]:
    """Point the installed host at a fresh sandbox; put everything back afterwards."""
    host = installed_root
    db = replace(db_server, database=unique_db_name())
    create_sandbox(db, clients=CLIENTS, services=SERVICES, seed=SEED, today=SANDBOX_TODAY)
    db_conf = host.root / "etc" / "billmgr.conf.d" / "db.conf"
    saved_conf = db_conf.read_bytes()
    saved_etc = {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
                 for p in host.etc.iterdir() if p.is_file()}
    spool = host.root / "var" / "amocrm" / "spool"
    saved_spool = {p.name for p in spool.iterdir()} if spool.is_dir() else set()
    # The module's config as a fresh install leaves it, whatever another test of the shared
    # install put there (an edited amocrm.conf, a presets.custom, old tokens).
    for name in saved_etc:
        if name != "presets.default":
            (host.etc / name).unlink()
    (host.etc / "amocrm.conf").write_bytes((REPO / "etc/amocrm/amocrm.conf.default").read_bytes())
    db_conf.write_text(render_db_conf(db))
    sandbox = Sandbox(db)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    try:
        yield Rig(host, sandbox, amocrm_emulator_factory(), cwd)
    finally:
        sandbox.close()
        db_conf.write_bytes(saved_conf)
        for path in host.etc.iterdir():
            if path.is_file() and path.name not in saved_etc:
                path.unlink()
        for name, (data, mode) in saved_etc.items():
            (host.etc / name).write_bytes(data)
            (host.etc / name).chmod(mode)
        if spool.is_dir():
            for path in spool.iterdir():
                if path.name not in saved_spool and path.is_file():
                    path.unlink()
        drop_database(db)


def package_imports(verbose_stderr: str) -> Tuple[List[str], List[str]]:
    """Modules of billmgr_amocrm that ``PYTHONVERBOSE`` says were imported, and their code files."""
    modules = re.findall(r"^import '(billmgr_amocrm(?:\.\w+)*)' #", verbose_stderr, re.M)
    files = re.findall(r"^# code object from '?(.+?)'?$", verbose_stderr, re.M)
    return modules, [f for f in files if f"{os.sep}billmgr_amocrm{os.sep}" in f]


def assert_ran_installed_copy(rig: Rig, proc: subprocess.CompletedProcess) -> None:
    """Every module of the package the process imported was read from under R, none from the work tree."""
    modules, files = package_imports(proc.stderr)
    assert len(modules) >= 10 and len(files) == len(modules), (modules, files)
    root = str(rig.host.root) + os.sep
    assert [f for f in files if not f.startswith(root)] == []
    assert [f for f in files if os.path.realpath(f).startswith(str(REPO) + os.sep)] == []


def marker_field_ids(rig: Rig) -> Dict[Kind, int]:
    conf = json.loads((rig.host.etc / "amocrm.conf").read_text(encoding="utf-8"))
    ids = conf["sync"]["marker_field_ids"]
    return {kind: int(ids[kind.value]) for kind in KIND_ORDER}


def markers_in_amocrm(rig: Rig, kind: Kind, field_id: int) -> Tuple[List[str], Dict[str, int]]:
    """Every marker value on live entities of ``kind`` (with repeats) and marker -> entity id."""
    values: List[str] = []
    owner: Dict[str, int] = {}
    for entity in rig.emulator.control.entities(kind.amo_entity, include_deleted=False):
        for cf in entity.get("custom_fields_values") or []:
            if cf.get("field_id") == field_id:
                for value in cf.get("values") or []:
                    values.append(marker_identity(str(value["value"])))
                    owner[marker_identity(str(value["value"]))] = int(entity["id"])
    return values, owner


def billing_ids(rig: Rig, kind: Kind) -> List[int]:
    """Every entity the default rules export: all clients, legal-entity payers, all services."""
    sql = {Kind.CONTACT: "SELECT id FROM account",
           Kind.COMPANY: "SELECT id FROM profile WHERE profiletype = 2",
           Kind.LEAD: "SELECT id FROM item"}[kind]
    return sorted(int(row[0]) for row in rig.sandbox.query(sql))


def links(rig: Rig, kind: Kind) -> Dict[int, int]:
    rows = rig.sandbox.query(f"SELECT billmgr_id, amocrm_id FROM {kind.link_table}")  # noqa: S608
    return {int(b): int(a) for b, a in rows}


def assert_everything_exported_once(rig: Rig) -> None:
    fields = marker_field_ids(rig)
    for kind in KIND_ORDER:
        wanted = billing_ids(rig, kind)
        values, owner = markers_in_amocrm(rig, kind, fields[kind])
        assert len(values) == len(set(values)), f"duplicate {kind.amo_entity} in amoCRM"
        assert sorted(values) == sorted(marker_value(kind, i) for i in wanted), kind
        linked = links(rig, kind)
        assert sorted(linked) == wanted, kind
        assert all(owner[marker_value(kind, i)] == linked[i] for i in wanted), kind
    assert rig.count("SELECT COUNT(*) FROM amocrm_queue") == 0


def test_installed_copy_authorizes_exports_hooks_and_lists(rig: Rig) -> None:
    host, control = rig.host, rig.emulator.control
    integ = rig.emulator.integration
    secret = integ["client_secret"]

    # 1. The admin authorizes with the installed CLI; the secret comes on stdin, never in argv.
    auth = rig.run(host.sbin("amocrm"), "authorize", "--url", rig.emulator.url,
                   "--client-id", integ["client_id"], "--redirect-uri", integ["redirect_uri"],
                   "--code", integ["auth_code"], stdin=secret + "\n", extra=(("PYTHONVERBOSE", "1"),))
    assert "authorized:" in auth.stdout and "initial export requested" in auth.stdout
    assert_ran_installed_copy(rig, auth)
    for name in TOKEN_FILES:
        path = host.etc / name
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0), path
    assert (host.etc / "client_secret").read_text().strip() == secret
    refresh = (host.etc / "refresh_token").read_text().strip()
    assert refresh in control.refresh_token_uses()  # the pair amoCRM issued for this code
    for name in ("amocrm.conf", "token.json"):
        assert secret not in (host.etc / name).read_text() and refresh not in (host.etc / name).read_text()

    # 2. cron runs the installed worker: the initial export reaches amoCRM, each entity once.
    first = rig.worker()
    assert_ran_installed_copy(rig, first)
    assert_everything_exported_once(rig)
    wanted = {k: len(billing_ids(rig, k)) for k in KIND_ORDER}
    assert wanted[Kind.CONTACT] >= CLIENTS and wanted[Kind.COMPANY] > 0 and wanted[Kind.LEAD] >= SERVICES

    # 3. The panel opens a service and an admin edits a client; the installed hook runs for each.
    account = billing_ids(rig, Kind.CONTACT)[0]
    item = rig.sandbox.open_service(account, itemtype="vds", params={"domain": "e2e.example.ru"})
    rig.sandbox.edit_client(account, realname="Сквозной Тест")
    spool = host.root / "var" / "amocrm" / "spool"
    for func, elid, doc in (("service.postopen", item, POSTOPEN_DOC.format(item=item)),
                            ("account.edit", account, ACCOUNT_EDIT_DOC.format(account=account))):
        before = set(spool.glob("*.json"))
        hook = rig.panel("amocrm_event", {"func": func, "elid": str(elid), "sok": "ok"}, doc)
        assert (hook.returncode, hook.stderr) == (0, b"")
        assert hook.stdout == doc.encode("utf-8")
        new = set(spool.glob("*.json")) - before
        assert len(new) == 1, f"{func}: no event spooled"
        event = json.loads(new.pop().read_text(encoding="utf-8"))
        assert (event["func"], event["elid"]) == (func, str(elid))

    # 4. The next run of the installed cron entry creates the new lead, links it, sends the edit.
    rig.scheduled_worker()
    assert not list(spool.glob("*.json"))
    assert_everything_exported_once(rig)
    lead_id = links(rig, Kind.LEAD)[item]
    contact_id = links(rig, Kind.CONTACT)[account]
    edges = control.state()["links"]
    assert {"entity_type": "leads", "entity_id": lead_id, "to_entity_type": "contacts",
            "to_entity_id": contact_id} in [{k: e[k] for k in ("entity_type", "entity_id", "to_entity_type",
                                                               "to_entity_id")} for e in edges]
    contact = next(e for e in control.entities("contacts") if e["id"] == contact_id)
    assert "Сквозной Тест" in contact["name"]

    # 5. The admin opens Integration -> amoCRM -> bindings: the installed handler lists the new one.
    params = {"func": "amocrm.bindings", "filter_kind": "lead", "filter_search": str(item)}
    listed = rig.panel("amocrm_ui", params, skeleton("amocrm.bindings", "ru", params).decode("utf-8"))
    assert listed.returncode == 0, listed.stderr
    answer = etree.fromstring(listed.stdout, safe_parser())
    assert answer.find("error") is None, listed.text
    rows = {e.findtext("id"): e for e in answer.findall("elem")}
    assert f"lead:{item}" in rows, listed.text
    row = rows[f"lead:{item}"]
    assert row.findtext("amocrm_id") == str(lead_id)
    assert row.findtext("amocrm_url") == f"{rig.emulator.url}/leads/detail/{lead_id}"

    # 6. And the installed status command agrees, without the network.
    status = rig.run(host.sbin("amocrm"), "status").stdout
    assert "queue: 0 pending" in status
    assert f"'lead': {wanted[Kind.LEAD] + 1}" in status

    # 7. A day later the access token has expired: the installed worker refreshes the pair (in
    # its own child process, see amocrm/detached.py) and the files hold the new one.
    meta = json.loads((host.etc / "token.json").read_text(encoding="utf-8"))
    meta["expires_at"] = time.time() - 1
    (host.etc / "token.json").write_text(json.dumps(meta), encoding="utf-8")
    control.advance(86400 + 60)
    assert "queued 1" in rig.run(host.sbin("amocrm"), "resync", "contact", str(account)).stdout
    rig.worker()
    renewed = (host.etc / "refresh_token").read_text().strip()
    assert renewed != refresh and control.refresh_token_uses()[refresh] == 1
    assert stat.S_IMODE((host.etc / "refresh_token").stat().st_mode) == 0o600
    assert "token pair rotated" in (host.root / "var" / "amocrm_task.log").read_text(encoding="utf-8")

    # No secret reached a log or the state directory on the way.
    access = (host.etc / "access_token").read_text().strip()
    written = [p for p in (host.root / "var").rglob("*") if p.is_file()]
    assert any(p.name == "amocrm_task.log" for p in written)
    leaked = [p for p in written for s in (secret, refresh, renewed, access) if s.encode() in p.read_bytes()]
    assert leaked == []
