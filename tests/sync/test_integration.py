"""End to end: sandbox MariaDB + emulator, through the real hook and the real worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from tests.harness import run_addon

REPO = Path(__file__).resolve().parents[2]


def worker_once() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False)


def test_initial_export_sends_everything_once(rig):
    result = service.run_export(app=rig.app)
    assert result.stopped is None, result.stop_reason
    links = {k: rig.app.store.links(k, list(range(1, 100000))) for k in Kind}
    for kind in Kind:
        counts = rig.marker_counts(kind.amo_entity)
        assert len(counts) == len(links[kind]) > 0
        assert max(counts.values()) == 1
    status = service.status(app=rig.app)
    assert status.queue_depth == 0 and status.failed == 0


def hook(func: str, **params: str) -> None:
    run = run_addon("amocrm_event", dict(params, func=func, sok="ok"), "<doc/>", event_type="after")
    assert run.returncode == 0 and run.stdout == b"<doc/>"


def test_every_event_kind_reaches_amocrm_through_the_hook_and_the_worker(rig):
    service.run_export(app=rig.app)
    box = rig.sandbox
    account = box.query("SELECT MIN(id) FROM account")[0][0]
    user = box.query("SELECT MIN(id) FROM user WHERE account = %s", (account,))[0][0]
    box.edit_user(user, realname="Renamed By Test")
    hook("user.edit", elid=str(user))
    fresh = box.add_client(name="Fresh Client", email="fresh@example.com").account_id
    hook("register", plid="", su="", email="fresh@example.com")
    payer = box.add_payer(fresh, name="OOO Fresh")
    hook("profile.edit", elid=str(payer))
    item = box.open_service(fresh)
    hook("service.postopen", elid=str(item))
    done = worker_once()
    assert done.returncode == 0, done.stderr

    contact_id = rig.app.store.links(Kind.CONTACT, [account])[account]
    (contact,) = [c for c in rig.entities("contacts") if c["id"] == contact_id]
    assert "Renamed By Test" in contact["name"]
    fresh_contact = rig.app.store.links(Kind.CONTACT, [fresh])[fresh]
    company_id = rig.app.store.links(Kind.COMPANY, [payer])[payer]
    lead_id = rig.app.store.links(Kind.LEAD, [item])[item]
    (lead,) = [x for x in rig.entities("leads") if x["id"] == lead_id]
    state = rig.emulator.control.state()
    text = repr(state.get("links", state))
    assert str(company_id) in text and str(fresh_contact) in text and lead["id"] == lead_id
    assert service.status(app=rig.app).queue_depth == 0
    for kind in Kind:
        assert max(rig.marker_counts(kind.amo_entity).values()) == 1


def test_lost_create_responses_make_no_duplicates(rig, caplog):
    rig.emulator.control.add_fault(action="drop", path="^/api/v4/contacts$", method="POST", count=1)
    first = service.run_export(app=rig.app)
    assert any("answer lost" in r.getMessage() for r in caplog.records)  # the fault did fire
    second = service.run_export(app=rig.app)
    assert first.stopped is None and second.stopped is None
    counts = rig.marker_counts("contacts")
    assert counts and max(counts.values()) == 1
    assert len(counts) == len(rig.app.store.links(Kind.CONTACT, list(range(1, 100000))))
