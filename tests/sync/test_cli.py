"""``sbin/amocrm``: the admin's commands over MariaDB and the emulator.

The export crash test runs the real executable and kills it; the other commands run
``cli.main`` in-process (the same code path, without a Python start-up each).
"""

from __future__ import annotations

import ast
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

from billmgr_amocrm import cli, service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.exitstatus import ExitStatus
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 60.0


def amocrm(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out=out, err=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


def run_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "sbin" / "amocrm"), *args], env=dict(os.environ),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_an_export_killed_mid_way_resumes_without_duplicates(rig):
    control = rig.emulator.control
    # the lead batch is slow to answer: the export is killed while amoCRM is creating it
    control.add_fault(action="delay", path="^/api/v4/leads$", method="POST", delay=2.0, count=1)
    first = run_cli("export")
    try:
        post = wait_for("the lead batch in flight", lambda: next(
            (r for r in control.requests() if (r["method"], r["path"]) == ("POST", "/api/v4/leads")), None))
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=DEADLINE)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.communicate()
    wait_for("amoCRM to finish the orphaned write", lambda: any(
        r["seq"] == post["seq"] and r["status"] == 200 for r in control.requests(since=post["seq"] - 1)))
    made = rig.marker_counts("leads")
    assert made and not rig.all_links(Kind.LEAD)   # created in amoCRM, unknown to our tables

    second = run_cli("export")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "export: queued" in out and " failed" in out
    assert "/s, 0 failed)" in err   # the progress line: counts and rate
    for kind in Kind:
        counts = rig.marker_counts(kind.amo_entity)
        assert max(counts.values()) == 1 and len(counts) == len(rig.all_links(kind))
    assert set(rig.marker_counts("leads")) == set(made)


def test_status_failed_retry_unlink_resync_and_reconcile_commands(rig):
    assert rig.sync().failed == 0
    code, out, _ = amocrm("status")
    assert code == 0 and "queue: 0 pending" in out and "export contact: 30 queued (finished)" in out

    account = int(rig.sandbox.query("SELECT MIN(id) FROM account")[0][0])
    contact = rig.link(Kind.CONTACT, account)
    billing = rig.app.billing
    services, payers = billing.services_by_account([account]), billing.legal_payers_by_account([account])
    deals = len(rig.app.store.links(Kind.LEAD, services.get(account, [])))
    companies = len(rig.app.store.links(Kind.COMPANY, payers.get(account, [])))
    assert amocrm("unlink", "contact", str(account))[1] == "unlinked 1\n"
    assert rig.link(Kind.CONTACT, account) is None
    # unlink means "forget it": the next sync makes a new contact (the old one stays in amoCRM)
    # and links the client's company and deals to it (tests/sync/test_unlink.py)
    code, out, _ = amocrm("resync", "contact", str(account))
    assert (code, out) == (0, "queued 1\n")
    code, out, _ = amocrm("sync")
    assert code == 0 and out.startswith("sync: ") and " 0 failed" in out, out
    assert rig.link(Kind.CONTACT, account) not in (None, contact)

    # a failure, listed with amoCRM's reason, then revived
    select = next(f for f in rig.app.amo().custom_fields("contacts") if f["type"] == "select")
    rig.sandbox.edit_client(account, name="Refused Name")
    rig.add_rule("fields", {"entity": "contact", "field_id": select["id"], "field_type": "select",
                            "value": "client.name", "enum_map": {"Refused Name": 55555555}})
    amocrm("resync", "contact", str(account))
    assert amocrm("sync")[0] == 0
    code, out, _ = amocrm("failed")
    assert code == 0 and f"contact {account} (attempts 1): amoCRM refused contacts" in out
    status = amocrm("status")[1]
    assert "failed: 1 {'contact': 1" in status
    # today's line: the export (30 contacts, 12 companies, 200 leads), the unlinked contact made
    # anew with its company and deals linked to it, the refusal
    today = status.split("sent per day (host's local days):\n", 1)[1].splitlines()[0]
    expected = f"contact 31, company {12 + companies}, lead {200 + deals}, note 0, task 0, failed 1"
    assert expected in today, status
    rig.sandbox.edit_client(account, name="Accepted Name")
    assert amocrm("retry-failed", "contact")[1] == "revived 1 failed rows\n"
    assert amocrm("sync")[1].startswith("sync: 1 sent, 0 skipped, 0 failed")
    assert amocrm("failed")[1] == "no failed records\n"

    # the new field rule changed what every contact should show: the full re-check queues them all
    code, out, _ = amocrm("reconcile", "--full")
    queued = ast.literal_eval(out.split("queued ", 1)[1])
    assert code == 0 and queued["contact"] >= len(rig.all_links(Kind.CONTACT)) - 2
    assert amocrm("sync")[0] == 0
    # a client nobody told the module about: the reconciler queues it
    fresh = rig.sandbox.add_client(name="Silent Client", email="silent@example.com").account_id
    code, out, _ = amocrm("reconcile")
    assert code == 0 and "'contact': 1" in out
    amocrm("sync")
    assert rig.link(Kind.CONTACT, fresh)


def test_check_and_bad_input_speak_to_the_admin(rig):
    code, out, _ = amocrm("check")
    assert code is ExitStatus.OK and "token: ok" in out and "latency:" in out
    assert "marker fields: API-only" in out
    code, _, err = amocrm("resync", "contact")
    assert code == 0   # nothing to queue is not an error
    rig.emulator.control.block()
    code, _, err = amocrm("check")
    assert code is ExitStatus.ERROR and "error: amoCRM stopped serving the account" in err and "hint:" in err
    rig.emulator.control.unblock()


def test_the_catalog_is_read_once_and_cached(rig):
    seq = rig.request_seq()
    first = service.catalog(app=rig.app)
    assert first.fields["contacts"] and first.pipelines and first.users
    used = len(rig.requests_since(seq))
    again = service.catalog(app=rig.app)
    assert again.fetched_at == first.fetched_at and len(rig.requests_since(seq)) == used
    refreshed = service.catalog(refresh=True, app=rig.app)
    assert refreshed.fetched_at > first.fetched_at
    # what the lists read without a database or amoCRM: the last catalog fetched
    cached = service.cached_catalog(app=rig.app)
    assert cached is not None and cached["fetched_at"] == refreshed.fetched_at


def test_authorize_records_the_integration_but_no_loopback_url(rig):
    import json

    config = rig.app.config
    assert config.auth.client_id == rig.emulator.integration["client_id"]
    assert config.auth.redirect_uri == rig.emulator.integration["redirect_uri"]
    assert config.auth.url == ""   # amocrm.conf only takes real amoCRM addresses
    meta = json.loads(rig.app.paths.token_meta.read_text(encoding="utf-8"))
    assert meta["base_url"] == rig.emulator.url


def test_check_and_status_report_what_the_rules_name_and_amocrm_no_longer_has(rig, caplog):
    from billmgr_amocrm.rules.config import rebuild
    from billmgr_amocrm.settings import save_config

    assert rig.sync().failed == 0
    pipelines = rig.app.amo().pipelines()
    other = next(p for p in pipelines if not p["is_main"])
    stage = next(s["id"] for s in other["_embedded"]["statuses"] if s["type"] == 0)
    rule = rig.add_rule("pipelines", {"pipeline_id": other["id"], "status_id": stage})
    sync = rig.app.config.sync.model_dump(mode="json")
    sync["responsible_user_id"] = 504147
    config = rebuild(rig.app.config, {"sync": sync})
    save_config(config, rig.app.paths, rig.app.presets)
    rig.app.reload_rules(config)
    code, out, _ = amocrm("check")
    assert code is ExitStatus.OK and "amoCRM catalog: matches the rules" in out
    # amoCRM changes under the config: the user is deactivated, the pipeline deleted
    rig.emulator.control.deactivate_user(504147)
    rig.emulator.control.delete_pipeline(other["id"])
    code, out, _ = amocrm("check")
    assert code is ExitStatus.ERROR and "amoCRM catalog: 2 problem(s)" in out
    assert (f"Pipeline rule {rule} (pipelines.0.pipeline_id): pipeline {other['id']} does not exist in "
            "amoCRM. Choose an existing pipeline and status in the rule, or delete the rule.") in out
    assert ("Sync settings (sync.responsible_user_id): amoCRM user 504147 is deactivated. Choose an "
            "active amoCRM user as the responsible user, or leave it empty.") in out
    # the status screen says the same from the catalog last read, before any record failed
    code, out, _ = amocrm("status")
    assert code == 0 and "amoCRM catalog: 2 problem(s)" in out and "failed: 0" in out
    # the worker's periodic check logs it too
    caplog.set_level("WARNING", logger="billmgr_amocrm.service")
    health = service.log_catalog_health(rig.app)
    assert health is not None and {p.code for p in health.problems} == {"pipeline_missing", "user_inactive"}
    assert sum("amoCRM no longer matches amocrm.conf" in r.getMessage() for r in caplog.records) == 2


def test_a_reader_that_leaves_early_gets_no_traceback(rig):
    """``amocrm status | head -1``: the pipe closes under the command; it ends quietly."""
    rig.sync()
    proc = run_cli("status")
    proc.stdout.close()                        # the reader is gone before the first line
    err = proc.stderr.read()
    proc.wait(timeout=DEADLINE)
    proc.stderr.close()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 1
