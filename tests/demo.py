"""``make demo``: a sandbox BILLmanager synced into the bundled amoCRM emulator, end to end.

1. builds ``./demo-root`` (an mgr5 tree) and a sandbox database of 1,000 clients;
2. starts the emulator as a subprocess, 7 req/s limit on;
3. authorizes through ``service.authorize`` (what the settings form calls);
4. runs the initial export with its progress line;
5. adds a renewal rule (a task 14 days before a service's expiry);
6. fires live events through the real hook ``addon/amocrm_event`` (an edit, a new client with a
   payer and a service due in 10 days, a suspension, a closure, a paid payment) and runs the
   worker once, then the renewal duty;
7. prints what is where: bindings per kind, queue, duplicates (by marker, from the emulator),
   the suspended and the closed service's leads, the payment note and the renewal task.
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
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from billmgr_amocrm.markers import marker_identity

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "addon"))

DEMO_ROOT = REPO / "demo-root"
CLIENTS = 1000
SERVICES = 3000
# contacts the sales team made by hand before the module came (e-mails of as many clients)
MANAGERS_CONTACTS = 40
RENEWAL_RULE = {"id": "demo", "days_before": 14, "skip_autoprolong": True, "conditions": [],
                "text": "Продлить {service_name} ({domain}) до {expiredate}: {price}"}


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
        made_by_hand = _managers_contacts(emulator, settings)
        say(f"the sales team's own contacts already in amoCRM: {len(made_by_hand)} (e-mails of "
            f"{MANAGERS_CONTACTS} clients; the export binds them instead of making second copies)")
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

        main = next(p for p in emulator.control.state()["pipelines"] if p["is_main"])
        on_hold = next(s for s in main["statuses"] if s["name"] == "Принимают решение")
        say(f"rules: a renewal task {RENEWAL_RULE['days_before']} days before a service's expiry; "
            f"a suspended service's lead to «{on_hold['name']}», a closed one's to lost (143)")
        _add_rules(main["id"], on_hold["id"])

        say("live events through the real hook, then the worker (--once) and the renewal duty")
        from tests.sandbox import Sandbox

        box = Sandbox(settings)
        account = box.query("SELECT MIN(id) FROM account")[0][0]
        user = box.query("SELECT MIN(id) FROM user WHERE account = %s", (account,))[0][0]
        box.edit_user(user, realname="Демо Переименован")
        fresh = box.add_client(name="Демо Клиент", email="demo@example.com").account_id
        payer = box.add_payer(fresh, name="ООО Демо")
        item = box.open_service(fresh, params={"domain": "demo.example"})
        due = date.today() + timedelta(days=10)
        with box.conn.cursor() as cur:
            cur.execute("UPDATE item SET expiredate = %s, autoprolong = NULL WHERE id = %s", (due, item))
        box.conn.commit()
        suspended, closed = (int(r[0]) for r in box.query(
            "SELECT id FROM item WHERE status = 2 AND account <> %s ORDER BY id LIMIT 2", (fresh,)))
        box.set_service_status(suspended, 3, suspended_by="autosuspend")
        box.set_service_status(closed, 4)
        paid = box.add_payment(fresh, Decimal("1500"), items=[item], method="Банковская карта")
        events = [("user.edit", {"elid": str(user)}), ("register", {"email": "demo@example.com"}),
                  ("profile.edit", {"elid": str(payer)}), ("service.postopen", {"elid": str(item)}),
                  ("service.postsuspend", {"elid": str(suspended)}),
                  ("service.postclose", {"elid": str(closed)}),
                  ("payment.setpaid", {"elid": str(paid)})]
        for func, params in events:
            run_addon("amocrm_event", dict(params, func=func, sok="ok"), "<doc/>", event_type="after")
        box.close()
        worker = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                                env=dict(os.environ), check=False)
        say(f"worker exit code {worker.returncode}")
        renewals = service.run_renewals_now()
        say(f"renewal duty: {renewals}")

        status = service.status()
        duplicates = _duplicates(emulator)
        say("summary")
        print(f"    bindings:   {status.linked}")
        print(f"    queue:      {status.queue_depth} pending, {status.failed} failed")
        print(f"    duplicates: {duplicates} (entities sharing a BILLmanager ID marker in amoCRM)")
        bound = set(_all_links(Kind.CONTACT).values()) & set(made_by_hand)
        print(f"    the sales team's contacts bound to their clients: {len(bound)} of {len(made_by_hand)} "
              "(a mailbox several clients share binds none of them)")
        print(f"    new client {fresh}: contact {_link(Kind.CONTACT, fresh)}, payer {payer}: company "
              f"{_link(Kind.COMPANY, payer)}, service {item}: lead {_link(Kind.LEAD, item)}")
        state = emulator.control.state()
        leads = {lead["id"]: lead for lead in state["entities"]["leads"]}
        for label, sid in (("suspended", suspended), ("closed", closed)):
            lead = leads.get(_link(Kind.LEAD, sid))
            where = "-" if lead is None else \
                f"pipeline {lead.get('pipeline_id')}, status {lead.get('status_id')}"
            print(f"    {label} service {sid}: lead {_link(Kind.LEAD, sid)} now in {where}")
        notes = [n for n in state.get("notes", [])
                 if f"payment:{paid}:" in (n.get("params") or {}).get("text", "")]
        tasks = [k for k in state.get("tasks", []) if f"renewal:{item}:" in (k.get("text") or "")]
        for note in notes:
            first = note["params"]["text"].splitlines()[0]
            print(f"    payment {paid}: note on {note.get('_entity_type')} {note.get('entity_id')}: {first}")
        for task in tasks:
            words = task["text"].splitlines()[0]
            print(f"    renewal task {task['id']} on lead {task.get('entity_id')}: {words}")
        print(f"    see them: {emulator.url}/_emulator/state (notes, tasks, leads); `amocrm status`; "
              "the panel's bindings (notes, tasks per entity) and Statistics")
        snapshot = DEMO_ROOT / "emulator-state.json"
        snapshot.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"    amoCRM state: {snapshot} (a snapshot of everything the emulator holds)")
        print(f"    logs: {root / 'var' / 'amocrm_task.log'}, {root / 'var' / 'amocrm_action.log'}")
        print(f"    CLI:  MGR5_ROOT={root} BILLMGR_AMOCRM_ALLOW_LOOPBACK=1 "
              ".venv/bin/python sbin/amocrm status")
        ok = (status.queue_depth == 0 and duplicates == 0 and worker.returncode == 0 and len(notes) >= 1
              and len(tasks) == 1)
        if ok and os.environ.get("DEMO_KEEP") == "1":
            print(f"    emulator still running at {emulator.url}/_emulator/state; Ctrl-C to stop", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0 if ok else 1
    finally:
        emulator.stop()


def _add_rules(pipeline_id: int, on_hold_status_id: int) -> None:
    """What the panel's Renewal tasks and Pipelines forms save (README: Service lifecycle)."""
    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import save_config

    def on(event: str, status_id: int) -> dict:
        return {"id": event, "pipeline_id": pipeline_id, "status_id": status_id,
                "conditions": [{"value": "service.event", "validator": "equals", "argument": event}]}

    app = build()
    try:
        changes = {"renewals": [RENEWAL_RULE],
                   "pipelines": [on("close", 143), on("suspend", on_hold_status_id)]}
        save_config(rebuild(app.config, changes), app.paths, app.presets)
    finally:
        app.close()


def _managers_contacts(emulator: Any, settings: Any) -> list[int]:
    """Contacts the sales team made by hand before the module came: the e-mails of the first
    clients that have one, in other letter cases, under the names people gave them."""
    from tests.sandbox import Sandbox

    box = Sandbox(settings)
    try:
        rows = box.query("SELECT account, MIN(email) FROM user WHERE email LIKE %s GROUP BY account "
                         "ORDER BY account LIMIT %s", ("%@%", MANAGERS_CONTACTS))
    finally:
        box.close()
    def by_hand(account: int, email: str) -> dict[str, Any]:
        value = {"value": email.strip().upper(), "enum_code": "WORK"}
        return {"name": f"Клиент с сайта {account}",
                "custom_fields_values": [{"field_code": "EMAIL", "values": [value]}]}

    body = [by_hand(int(account), str(email)) for account, email in rows]
    reply = emulator.session().post(f"{emulator.url}/api/v4/contacts", json=body, timeout=30)
    reply.raise_for_status()
    return [int(c["id"]) for c in reply.json()["_embedded"]["contacts"]]


def _all_links(kind: Any) -> dict[int, int]:
    from billmgr_amocrm.bootstrap import build

    app = build()
    try:
        return app.store.links(kind, list(range(1, CLIENTS * 10)))
    finally:
        app.close()


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
