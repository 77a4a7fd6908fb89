"""Issue 17 inside the proof scenarios: a renewal rule with services due inside its window, and
payments waiting to be noted; what amoCRM shows of them afterwards. The audit itself fails on a
payment noted twice on one entity or two open tasks for one service and expiry date."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable, Sequence

from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import save_config
from tests.sandbox.generate import add_months

from .mirror_audit import NOTE_KEY, TASK_KEY
from .support import ProofRig

WINDOW_DAYS = 10


def due_renewals_and_payments(rig: ProofRig, rng: random.Random, scale: Any) -> tuple[list[int], list[int]]:
    """Issue 17 in the race: a renewal rule (saved before a second host copies amocrm.conf) and
    services due inside its window, and payments by their owners, some paying for them."""
    app = rig.app
    rule = {"id": "r1", "days_before": WINDOW_DAYS, "text": "Продлить {service_name} до {expiredate}",
            "skip_autoprolong": False, "conditions": []}
    save_config(rebuild(app.config, {"renewals": [rule]}), app.paths, app.presets)
    app.reload_rules()
    accounts = [int(a) for (a,) in rig.sql("SELECT id FROM account ORDER BY id")]
    soon, payments = [], []
    for _ in range(scale(6, 40)):
        expires = date.today() + timedelta(days=rng.randint(0, WINDOW_DAYS - 1))
        owner = rng.choice(accounts)
        item = rig.sandbox.open_service(owner, opendate=add_months(expires, -1), period=1)
        rig.sql("UPDATE item SET expiredate = %s WHERE id = %s", (expires, item))
        soon.append(item)
        payments.append(rig.sandbox.add_payment(owner, Decimal(rng.randint(100, 9999)), items=[item]))
    payments += [rig.sandbox.add_payment(rng.choice(accounts), Decimal(rng.randint(100, 9999)))
                 for _ in range(scale(10, 100))]
    return soon, payments


def activities_done(rig: ProofRig) -> Callable[[], bool]:
    def check() -> bool:
        # pending rows only: a task completed (its service prolonged or closed by the events) and a
        # failed row are final; the scenario's own checks fail on a failed row
        left = rig.sql("SELECT (SELECT COUNT(*) FROM amocrm_payment2note WHERE status = 'pending') + "
                       "(SELECT COUNT(*) FROM amocrm_renewal_task WHERE status = 'pending')")[0][0]
        if left:
            rig.make_due()
        return not left
    return check


def noted_and_tasked(rig: ProofRig) -> tuple[set[int], set[int]]:
    """Payments with a note on a contact, and services with an open renewal task, in amoCRM."""
    state = rig.control.state()
    noted = {int(m.group(1)) for n in state["notes"] if n["_entity_type"] == "contacts"
             and (m := NOTE_KEY.search(n["params"].get("text", "")))}
    tasked = {int(m.group(1)) for k in state["tasks"] if not k["is_completed"]
              and (m := TASK_KEY.search(k.get("text") or ""))}
    return noted, tasked


def still_due(rig: ProofRig, services: Sequence[int]) -> set[int]:
    """Of ``services``, those open and expiring inside the rule's window now (a prolonged or
    closed one had its task completed; one due again inside the window has a new one)."""
    return {int(i) for (i,) in rig.sql(
        "SELECT id FROM item WHERE status <> 4 AND expiredate BETWEEN CURDATE() AND CURDATE() + "
        f"INTERVAL {WINDOW_DAYS} DAY AND id IN ({', '.join(str(int(s)) for s in services)})")}
