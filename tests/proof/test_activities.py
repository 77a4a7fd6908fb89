"""Issue 17 under faults: payment notes and renewal tasks whose answers are lost (dropped, or a
504 after amoCRM applied them), with intents left open as by a killed worker: every payment is
noted once per state on each target, and every service expiring soon has exactly one open task."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import save_config
from billmgr_amocrm.sync.notes import note_payments, queue_payments
from billmgr_amocrm.sync.renewals import run_renewals
from tests.sandbox.generate import add_months
from tests.sandbox.payments import REFUNDED

from .mirror_audit import NOTE_KEY, TASK_KEY
from .support import SETTLE_AFTER, ProofRig

LOST = "^/api/v4/(contacts/notes|leads/notes|tasks)$"


def test_lost_answers_and_killed_workers_never_note_a_payment_twice_nor_open_two_tasks(
        proof_rig_factory: Any, scale: Any) -> None:
    rig: ProofRig = proof_rig_factory(clients=10, services=20)
    rig.enqueue_everything()
    rig.drain()
    app, rng = rig.app, random.Random(17)
    rule = {"id": "r1", "days_before": 10, "text": "Продлить {service_name}", "skip_autoprolong": False}
    config = rebuild(app.config, {"renewals": [rule]})
    save_config(config, app.paths, app.presets)
    app.reload_rules()
    contacts = rig.links(Kind.CONTACT)
    accounts = [int(a) for (a,) in rig.sql("SELECT id FROM account ORDER BY id") if contacts.get(a)]
    # services expiring within the rule's window, linked to leads
    soon = []
    for _ in range(scale(10, 100)):
        expires = date.today() + timedelta(days=rng.randint(0, 9))
        item = rig.sandbox.open_service(rng.choice(accounts), opendate=add_months(expires, -1), period=1)
        rig.sql("UPDATE item SET expiredate = %s WHERE id = %s", (expires, item))
        rig.enqueue(Kind.LEAD, item, "open")
        soon.append(item)
    rig.drain()
    payments = []
    for _ in range(scale(40, 500)):
        account = rng.choice(accounts)
        items = rng.sample(soon, rng.randint(0, 2))        # a payment pays for a few services at most
        payments.append(rig.sandbox.add_payment(account, Decimal(rng.randint(100, 9999)), items=items))
    for pid in payments[::5]:
        rig.sandbox.set_payment_status(pid, REFUNDED)
    rig.control.add_fault("drop", path=LOST, method="POST", probability=0.3)
    rig.control.add_fault("after_commit", path=LOST, method="POST", status=504, probability=0.3)
    queue_payments(app.store, app.billing, app.config.notes, payments)
    amo = app.activities()
    for _ in range(scale(60, 400)):
        note_payments(app.store, amo, app.billing, now=utcnow(), settle_after=SETTLE_AFTER)
        run_renewals(app.store, amo, app.billing, app.config, app.presets, now=utcnow(),
                     settle_after=SETTLE_AFTER)
        if rng.random() < 0.3:      # a worker killed after committing an intent, before its POST left
            rig.sql("UPDATE amocrm_payment2note SET token = 'killed0000', entity_id = 1, intent_at = "
                    "UTC_TIMESTAMP(6) WHERE status = 'pending' AND token IS NULL ORDER BY id LIMIT 1")
        rig.make_due()
        left = rig.sql("SELECT (SELECT COUNT(*) FROM amocrm_payment2note WHERE status <> 'done') + "
                       "(SELECT COUNT(*) FROM amocrm_renewal_task WHERE status <> 'open')")[0][0]
        if not left:
            break
    lost = [r for r in rig.api_requests() if r["fault"] and r["method"] == "POST"]
    assert lost, "no answer was lost: the scenario proved nothing"
    audit = rig.audit()
    assert audit.ok, audit.summary()
    state = rig.control.state()
    noted = {(int(m.group(1)), m.group(2)) for n in state["notes"]
             if (m := NOTE_KEY.search(n["params"].get("text", ""))) and n["_entity_type"] == "contacts"}
    assert noted == {(p, "refunded" if p in payments[::5] else "paid") for p in payments}
    tasked = {int(m.group(1)) for t in state["tasks"] if (m := TASK_KEY.search(t.get("text") or ""))
              and not t["is_completed"]}
    assert tasked == set(soon)
    assert rig.sql("SELECT COUNT(*) FROM amocrm_payment2note WHERE status <> 'done'") == [(0,)]
