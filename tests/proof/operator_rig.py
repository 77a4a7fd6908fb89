"""What the operator scenarios (issue 14, point 10) add to the proof rig: the admin's processes.

``Operator`` runs the real executables against one BILLmanager root, as an admin or cron
would: ``sbin/amocrm`` commands, ``sbin/amocrm_task --once`` and the daemon. Each process
gets the environment of the test with ``MGR5_ROOT`` set to that root, so a second root (a
second host: its own tree, tokens, spool and worker lock, the same database and amoCRM) is
just a second ``Operator``. Everything is a real subprocess; the audit stays
``ProofRig.audit()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.paths import HostPaths
from tests.fixtures.mgr5 import make_root
from tests.harness import run_addon

from .support import REPO, Key, ProofRig

CLI = str(REPO / "sbin" / "amocrm")
TASK = str(REPO / "sbin" / "amocrm_task")
# The daemon's duties run at start; an hourly reconcile is not what these scenarios exercise
# (scenario 7 asks for the repair explicitly), and it would only add passes.
QUIET_DUTIES = {"BILLMGR_AMOCRM_RECONCILE_EVERY": "100000"}
SAVE_EVENTS = {Kind.CONTACT: "account.edit", Kind.COMPANY: "profile.edit", Kind.LEAD: "service.postprolong"}
SAVED = b"<doc><ok/></doc>"   # what the panel hands the hook after a successful save


class Operator:
    """The admin's commands and the worker of one BILLmanager root (one host)."""

    def __init__(self, root: Path, env: Optional[Dict[str, str]] = None) -> None:
        self.root = root
        self.paths = HostPaths(root)
        self.env = dict(os.environ, MGR5_ROOT=str(root), BILLMGR_AMOCRM_ALLOW_LOOPBACK="1", **(env or {}))
        self.started: List[subprocess.Popen] = []

    def _popen(self, argv: List[str], extra: Optional[Dict[str, str]] = None,
               stdin: Optional[int] = None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, *argv], env=dict(self.env, **(extra or {})), cwd=REPO,
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.started.append(proc)
        return proc

    def start_cli(self, *args: str) -> subprocess.Popen:
        return self._popen([CLI, *args])

    def cli(self, *args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
        """``amocrm ARGS`` to the end; fails the test (with its output) unless it exits 0."""
        proc = self._popen([CLI, *args], stdin=subprocess.PIPE)
        out, err = proc.communicate(stdin, timeout=timeout)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        assert done.returncode == 0, f"amocrm {' '.join(args)} exited {done.returncode}: {out}\n{err[-3000:]}"
        return done

    def once(self, extra: Optional[Dict[str, str]] = None, timeout: float = 300,
             expect: int = 0) -> subprocess.CompletedProcess:
        """``amocrm_task --once`` as cron runs it; fails the test unless it exits ``expect``."""
        proc = self._popen([TASK, "--once"], dict(QUIET_DUTIES, **(extra or {})))
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == expect, f"amocrm_task --once exited {proc.returncode}: {err[-3000:]}"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def start_daemon(self, extra: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        return self._popen([TASK, "--daemon"], dict(QUIET_DUTIES, **(extra or {})))

    @staticmethod
    def stop(proc: subprocess.Popen, timeout: float = 60) -> str:
        """SIGTERM (the daemon finishes its batch), then its stderr; fails unless it exits 0."""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{proc.args!r} exited {proc.returncode}: {err[-3000:]}"
        return str(err)

    def kill_all(self) -> None:
        """Clean-up after a failed test: no process of this operator outlives it."""
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=30)

    def save(self, rig: ProofRig, key: Key, extra: Optional[Dict[str, str]] = None) -> None:
        """The panel's save of an entity on this host: the real hook writes its event into this
        host's spool (the worker of this host moves it into the queue)."""
        func, elid = SAVE_EVENTS[key[0]], str(key[1])
        run = run_addon("amocrm_event", {"func": func, "elid": elid, "sok": "ok"}, SAVED,
                        extra={"MGR5_ROOT": str(self.root), **(extra or {})})
        assert run.returncode == 0 and run.stdout == SAVED, run.stderr
        rig.touched.add(key)

    def authorize(self, rig: ProofRig) -> subprocess.CompletedProcess:
        """``amocrm authorize`` with a fresh code from amoCRM (the emulator), the secret on stdin."""
        integ = rig.emulator.integration
        code = rig.control.auth_code(integ["client_id"])
        return self.cli("authorize", "--url", rig.emulator.url, "--client-id", integ["client_id"],
                        "--redirect-uri", integ["redirect_uri"], "--code", code,
                        stdin=integ["client_secret"] + "\n")


def second_host(rig: ProofRig, base: Path) -> Operator:
    """Another BILLmanager root on the same database and amoCRM account, authorized on its own
    (a host keeps its own token pair; the module's settings are the first host's)."""
    root = make_root(base)
    for name in ("etc/billmgr.conf.d/db.conf", "etc/amocrm/amocrm.conf"):
        shutil.copy(rig.root / name, root / name)
    host = Operator(root)
    host.authorize(rig)
    return host


# libfaketime (Debian package ``faketime``; .ci/run installs it): the product reads the wall clock
# (time.time, datetime.now) and has no clock setting, so a process is moved in time from outside.
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1", "/usr/local/lib/faketime/libfaketime.so.1")


def faketime_library() -> Optional[str]:
    return next((lib for lib in FAKETIME_LIBS if Path(lib).exists()), None)


def clock_ahead(library: str, seconds: float) -> Dict[str, str]:
    """The environment of a process whose wall clock runs ``seconds`` ahead. The monotonic clock
    stays real: the host-wide rate limiter and the lock waits compare it across processes."""
    return {"LD_PRELOAD": library, "FAKETIME": f"+{int(seconds)}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


class Cron:
    """``amocrm_task --once`` every ``every`` seconds in a thread, as cron starts it, until stopped."""

    def __init__(self, operator: Operator, every: float,
                 before_each: Optional[Callable[[], None]] = None) -> None:
        self.operator = operator
        self.every = every
        self.before_each = before_each
        self.runs = 0
        self.errors: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Cron:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                if self.before_each is not None:
                    self.before_each()
                self.operator.once()
            except Exception as exc:  # noqa: BLE001 - reported by the test, which asserts no errors
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.runs += 1
            self._stop.wait(max(0.0, self.every - (time.monotonic() - began)))


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def drained_by_worker(rig: ProofRig, *hosts: Operator) -> Callable[[], bool]:
    """For ``wait_until``: the hosts' spools and the queue are empty; a row some retry put off
    is made due meanwhile (the worker's own retry delays are seconds to minutes: "time passes"
    is played)."""
    def check() -> bool:
        if any(any(host.paths.spool_dir.glob("*.json")) for host in hosts):
            return False
        if rig.depth():
            rig.make_due()
            return False
        return True
    return check


def lead_contact_mismatches(rig: ProofRig, accounts: List[int]) -> List[str]:
    """Leads of these clients not linked to their client's contact (the audit checks the company
    links; scenario 5 also needs the leads back on a re-created contact)."""
    contacts, leads = rig.links(Kind.CONTACT), rig.links(Kind.LEAD)
    edges: Dict[int, set] = {}
    for edge in rig.control.state()["links"]:
        if edge["entity_type"] == "leads" and edge["to_entity_type"] == "contacts":
            edges.setdefault(int(edge["entity_id"]), set()).add(int(edge["to_entity_id"]))
    items = rig.app.billing.services_by_account(accounts)
    found = []
    for account in accounts:
        for item in items.get(account, []):
            lead = leads.get(item)
            if lead is not None and contacts.get(account) not in edges.get(lead, set()):
                found.append(f"client {account}: lead {lead} has contacts {sorted(edges.get(lead, set()))}, "
                             f"not {contacts.get(account)}")
    return found


def orphan_leads(rig: ProofRig) -> List[int]:
    """Live amoCRM leads linked to no live contact."""
    contacts = {int(c["id"]) for c in rig.control.entities("contacts", include_deleted=False)}
    with_contact = {int(e["entity_id"]) for e in rig.control.state()["links"]
                    if e["entity_type"] == "leads" and e["to_entity_type"] == "contacts"
                    and int(e["to_entity_id"]) in contacts}
    return [int(lead["id"]) for lead in rig.control.entities("leads", include_deleted=False)
            if int(lead["id"]) not in with_contact]


def record_figures(rig: ProofRig, started: float, **extra: Any) -> Dict[str, Any]:
    """The figures RESULTS.md records for a scenario, after a passed audit (so no duplicate), printed
    (``pytest -rA`` shows them); fails on an orphan lead, which the audit's company check cannot
    see (a lead may rightly have no company, never no contact)."""
    live = {kind.amo_entity: len(rig.live_entities(kind)) for kind in Kind}
    orphans = orphan_leads(rig)
    figures = dict(live, events=rig.events, **extra, duplicates=0, orphans=len(orphans),
                   seconds=round(time.monotonic() - started, 1))
    print(f"figures: {figures}")
    assert not orphans, f"leads linked to no contact: {orphans[:10]}"
    return figures
