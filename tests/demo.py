"""``make demo``: a sandbox BILLmanager synced into the bundled amoCRM emulator, end to end.

1. builds ``./demo-root`` (an mgr5 tree) and a sandbox database of 1,000 clients;
2. starts the emulator as a subprocess, 7 req/s limit on;
3. authorizes through ``service.authorize`` (what the settings form calls);
4. runs the initial export with its progress line;
5. fires live events through the real hook ``addon/amocrm_event`` and runs the worker once;
6. prints what is where: bindings per kind, queue, duplicates (by marker, from the emulator).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from billmgr_amocrm.markers import marker_identity

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "addon"))

DEMO_ROOT = REPO / "demo-root"
CLIENTS = 1000
SERVICES = 3000


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def main() -> int:
    from billmgr_amocrm import service
    from billmgr_amocrm.cli import ProgressLine
    from billmgr_amocrm.dbconf import DbSettings
    from billmgr_amocrm.domain import Kind
    from billmgr_amocrm.foundation.files import write_atomic
    from tests.amocrm_emulator import start_emulator
    from tests.fixtures.mgr5 import make_root
    from tests.harness import run_addon
    from tests.sandbox import create_sandbox
    from tests.sandbox.dbconf import render_db_conf

    if DEMO_ROOT.exists():
        shutil.rmtree(DEMO_ROOT)
    root = make_root(DEMO_ROOT)
    os.environ["MGR5_ROOT"] = str(root)
    os.environ["BILLMGR_AMOCRM_ALLOW_LOOPBACK"] = "1"
    shutil.copy(REPO / "etc" / "amocrm" / "amocrm.conf.default", root / "etc" / "amocrm" / "amocrm.conf")
    settings = DbSettings(host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
                          port=int(os.environ.get("TEST_DB_PORT", "3306")),
                          user=os.environ.get("TEST_DB_USER", "root"),
                          password=os.environ.get("TEST_DB_PASSWORD", ""), database="")
    settings = replace(settings, database="amocrm_demo")
    say(f"sandbox BILLmanager: {CLIENTS} clients, {SERVICES} services in database {settings.database}")
    started = time.monotonic()
    create_sandbox(settings, clients=CLIENTS, services=SERVICES, seed=42, drop=True)
    write_atomic(root / "etc" / "billmgr.conf.d" / "db.conf", render_db_conf(settings))
    say(f"sandbox ready in {time.monotonic() - started:.1f} s")

    emulator = start_emulator(subprocess_mode=True, rate_limit=7)
    try:
        say(f"amoCRM emulator at {emulator.url} (7 req/s)")
        integ = emulator.integration
        auth = service.authorize(emulator.url, integ["client_id"], integ["client_secret"],
                                 integ["redirect_uri"], integ["auth_code"])
        say(f"authorized: {auth.subdomain}; marker fields {auth.marker_field_ids}")

        say("initial export")
        line = ProgressLine(sys.stderr)
        result = service.run_export(progress=line)
        line.close()
        rate = (result.done + result.skipped) / result.seconds if result.seconds else 0
        say(f"export: {result.done} sent, {result.skipped} skipped, {result.failed} failed "
            f"in {result.seconds:.1f} s ({rate:.0f} entities/s)")

        say("live events through the real hook, then the worker (--once)")
        from tests.sandbox import Sandbox

        box = Sandbox(settings)
        account = box.query("SELECT MIN(id) FROM account")[0][0]
        user = box.query("SELECT MIN(id) FROM user WHERE account = %s", (account,))[0][0]
        box.edit_user(user, realname="Демо Переименован")
        fresh = box.add_client(name="Демо Клиент", email="demo@example.com").account_id
        payer = box.add_payer(fresh, name="ООО Демо")
        item = box.open_service(fresh)
        events = [("user.edit", {"elid": str(user)}), ("register", {"email": "demo@example.com"}),
                  ("profile.edit", {"elid": str(payer)}), ("service.postopen", {"elid": str(item)})]
        for func, params in events:
            run_addon("amocrm_event", dict(params, func=func, sok="ok"), "<doc/>", event_type="after")
        box.close()
        worker = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                                env=dict(os.environ), check=False)
        say(f"worker exit code {worker.returncode}")

        status = service.status()
        duplicates = _duplicates(emulator)
        say("summary")
        print(f"    bindings:   {status.linked}")
        print(f"    queue:      {status.queue_depth} pending, {status.failed} failed")
        print(f"    duplicates: {duplicates} (entities sharing a BILLmanager ID marker in amoCRM)")
        print(f"    new client {fresh}: contact {_link(Kind.CONTACT, fresh)}, payer {payer}: company "
              f"{_link(Kind.COMPANY, payer)}, service {item}: lead {_link(Kind.LEAD, item)}")
        snapshot = DEMO_ROOT / "emulator-state.json"
        snapshot.write_text(json.dumps(emulator.control.state(), ensure_ascii=False, indent=1),
                            encoding="utf-8")
        print(f"    amoCRM state: {snapshot} (a snapshot of everything the emulator holds)")
        print(f"    logs: {root / 'var' / 'amocrm_task.log'}, {root / 'var' / 'amocrm_action.log'}")
        print(f"    CLI:  MGR5_ROOT={root} BILLMGR_AMOCRM_ALLOW_LOOPBACK=1 "
              ".venv/bin/python sbin/amocrm status")
        ok = status.queue_depth == 0 and duplicates == 0 and worker.returncode == 0
        if ok and os.environ.get("DEMO_KEEP") == "1":
            print(f"    emulator still running at {emulator.url}/_emulator/state; Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if ok else 1
    finally:
        emulator.stop()


def _link(kind: object, billmgr_id: int) -> object:
    from billmgr_amocrm import service

    page = service.bindings(kind, search=str(billmgr_id))
    return next((b.amocrm_id for b in page.rows if b.billmgr_id == billmgr_id), None)


def _duplicates(emulator: object) -> int:
    from billmgr_amocrm.bootstrap import build

    app = build()
    try:
        field_ids = set(app.marker_fields().values())
    finally:
        app.close()
    dupes = 0
    for entity in ("contacts", "companies", "leads"):
        seen: dict[str, int] = {}
        for record in emulator.control.entities(entity, include_deleted=False):  # type: ignore[attr-defined]
            for cf in record.get("custom_fields_values") or []:
                if cf.get("field_id") in field_ids:
                    value = marker_identity(str(cf["values"][0]["value"]))
                    seen[value] = seen.get(value, 0) + 1
        dupes += sum(n - 1 for n in seen.values() if n > 1)
    return dupes


if __name__ == "__main__":
    sys.exit(main())
