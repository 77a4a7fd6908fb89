"""Renewal tasks (issue 17.3) against MariaDB and the emulator over HTTP: one task per service
and expiry date, none for closed or (if the rule says so) auto-renewing services, completed
when the service is prolonged or closed, and exactly one after a lost answer."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.schedule import duties, run_due
from billmgr_amocrm.settings import save_config
from billmgr_amocrm.store.resolve import enqueue_event
from billmgr_amocrm.sync.renewals import run_renewals
from tests.sandbox.generate import add_months

KEY = re.compile(r"\[billmgr:renewal:(\d+):([\d-]+) bmsync-\w+\]")
RULE = {"id": "r1", "days_before": 14, "text": "Продлить {service_name} ({domain}) до {expiredate}: {price}",
        "skip_autoprolong": True, "conditions": []}


def tasks(rig: Any) -> list[dict[str, Any]]:
    return [t for t in rig.emulator.control.state()["tasks"] if KEY.search(t.get("text") or "")]


def open_keys(rig: Any) -> Counter:
    """(item, expiredate) -> open tasks amoCRM holds for it."""
    return Counter(KEY.search(t["text"]).groups() for t in tasks(rig) if not t["is_completed"])


def configure(rig: Any, *rules: dict[str, Any]) -> None:
    config = rebuild(rig.app.config, {"renewals": list(rules)})
    save_config(config, rig.app.paths, rig.app.presets)
    rig.app.reload_rules()


def run(rig: Any) -> Any:
    app = rig.app
    return run_renewals(app.store, app.activities(), app.billing, app.config, app.presets, now=utcnow(),
                        settle_after=float(app.config.sync.settle_after))


def expiring_service(rig: Any, in_days: int, *, autoprolong: bool = False,
                     domain: str = "shop.example") -> int:
    """A linked service that expires in ``in_days`` days."""
    (account,), *_ = rig.sandbox.query("SELECT MIN(id) FROM account")
    expires = date.today() + timedelta(days=in_days)
    item = rig.sandbox.open_service(int(account), opendate=add_months(expires, -1), period=1,
                                    params={"domain": domain})
    with rig.sandbox.conn.cursor() as cur:
        cur.execute("UPDATE item SET expiredate = %s, autoprolong = %s WHERE id = %s",
                    (expires, 1 if autoprolong else None, item))
    rig.sandbox.conn.commit()
    enqueue_event({"func": "service.postopen", "elid": str(item)}, rig.app.store, rig.app.billing)
    rig.sync()
    assert rig.link(Kind.LEAD, item)
    return item


def test_one_task_per_service_and_expiry_date_on_its_lead(rig):
    service.run_export(app=rig.app)
    configure(rig, RULE)
    soon = expiring_service(rig, 5)
    later = expiring_service(rig, 30)
    renews_itself = expiring_service(rig, 3, autoprolong=True)
    closed = expiring_service(rig, 4)
    rig.sandbox.set_service_status(closed, 4)
    run(rig)
    run(rig)                                       # again: the same day makes nothing new
    expires = f"{date.today() + timedelta(days=5):%Y-%m-%d}"
    assert open_keys(rig) == {(str(soon), expires): 1}
    (task,) = tasks(rig)
    assert task["entity_type"] == "leads" and task["entity_id"] == rig.link(Kind.LEAD, soon)
    assert task["text"].startswith("Продлить ") and "(shop.example)" in task["text"]
    assert expires in task["text"] and "RUB" in task["text"]
    assert later not in {int(k[0]) for k in open_keys(rig)}
    # a rule that does not skip auto-renewing services covers the one that renews itself
    configure(rig, {**RULE, "skip_autoprolong": False})
    run(rig)
    assert set(open_keys(rig)) == {(str(soon), expires),
                                   (str(renews_itself), f"{date.today() + timedelta(days=3):%Y-%m-%d}")}
    assert max(open_keys(rig).values()) == 1
    (counted,) = [c for c in rig.app.store.daily_counts(date(2000, 1, 1)).values() if c.get("task")]
    assert counted["task"] == 2                     # the day's counts: both tasks made


def test_a_prolonged_or_closed_service_gets_its_task_completed(rig):
    service.run_export(app=rig.app)
    configure(rig, RULE)
    prolonged = expiring_service(rig, 5)
    closed = expiring_service(rig, 6, domain="closed.example")
    run(rig)
    assert len(open_keys(rig)) == 2
    rig.sandbox.prolong_service(prolonged, 1)
    rig.sandbox.set_service_status(closed, 4)
    run(rig)
    assert open_keys(rig) == {}
    by_item = {int(KEY.search(t["text"]).group(1)): t for t in tasks(rig)}
    assert by_item[prolonged]["is_completed"] and "продлена до" in by_item[prolonged]["result"]["text"]
    assert by_item[closed]["is_completed"] and "закрыта" in by_item[closed]["result"]["text"]
    rows = rig.sandbox.query("SELECT status FROM amocrm_renewal_task")
    assert rows == [("completed",), ("completed",)]


def test_a_lost_answer_still_makes_exactly_one_task(rig, caplog):
    service.run_export(app=rig.app)
    configure(rig, RULE)
    item = expiring_service(rig, 2)
    rig.emulator.control.add_fault(action="drop", path="^/api/v4/tasks$", method="POST", count=1)
    run(rig)
    assert any("answer lost" in r.getMessage() for r in caplog.records)
    assert len(tasks(rig)) == 1                    # applied, not answered
    run(rig)                                       # settle_after is 0 here: adopted, not sent again
    run(rig)
    assert open_keys(rig) == {(str(item), f"{date.today() + timedelta(days=2):%Y-%m-%d}"): 1}
    assert rig.sandbox.query("SELECT status FROM amocrm_renewal_task") == [("open",)]


def test_the_worker_runs_it_on_its_schedule_under_the_lease(rig):
    service.run_export(app=rig.app)
    configure(rig, RULE)
    expiring_service(rig, 1)
    app = rig.app
    assert app.lease().acquire()
    try:
        ran = run_due(app, duties(3600.0, 86400.0), holds_lease=True)
        assert "renewals" in ran and len(open_keys(rig)) == 1
        assert "renewals" not in run_due(app, duties(3600.0, 86400.0), holds_lease=True)   # not due again yet
    finally:
        app.lease().release()


def test_a_task_deleted_in_amocrm_is_not_asked_about_again(rig):
    service.run_export(app=rig.app)
    configure(rig, RULE)
    item = expiring_service(rig, 5)
    run(rig)
    (task,) = tasks(rig)
    rig.emulator.control.delete_entity("tasks", task["id"])
    rig.sandbox.set_service_status(item, 4)
    run(rig)
    ((status, why),) = rig.sandbox.query("SELECT status, last_error FROM amocrm_renewal_task")
    assert status == "completed" and "deleted in amoCRM" in why


def test_amocrm_renewals_makes_them_now_and_leaves_them_to_a_running_engine(rig):
    from tests.sync.test_cli import amocrm

    service.run_export(app=rig.app)
    configure(rig, RULE)
    expiring_service(rig, 3)
    code, out, _ = amocrm("renewals")
    assert (code, out) == (0, "renewal tasks: 1 planned, 1 created, 0 completed, 0 failed\n")
    assert len(open_keys(rig)) == 1
    assert rig.app.lease().acquire()               # another engine runs the sync
    try:
        code, out, _ = amocrm("renewals")
        assert code == 4 and out.startswith("the sync engine is busy")
    finally:
        rig.app.lease().release()
