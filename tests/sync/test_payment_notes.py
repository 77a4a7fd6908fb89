"""Payment notes (issue 17.2) against MariaDB and the emulator over HTTP: events, the
reconciler's scan, the settings, and a lost answer or a killed worker -> still one note."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Any

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.clock import utcnow
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import save_config
from billmgr_amocrm.store.resolve import enqueue_event
from billmgr_amocrm.sync.notes import FLOOR_CURSOR, reconcile_payments
from tests.sandbox.payments import CANCELED, FRAUD, PAID, REFUNDED

KEY = re.compile(r"\[billmgr:payment:(\d+):(\w+) bmsync-\w+\]")


def notes(rig: Any) -> list[dict[str, Any]]:
    return [n for n in rig.emulator.control.state()["notes"] if KEY.search(n["params"].get("text", ""))]


def keyed(rig: Any) -> Counter:
    """(entity type, entity id, payment, state) -> how many notes amoCRM holds."""
    found: Counter = Counter()
    for note in notes(rig):
        payment, state = KEY.search(note["params"]["text"]).groups()
        found[(note["_entity_type"], note["entity_id"], int(payment), state)] += 1
    return found


def event(rig: Any, func: str, payment_id: int) -> None:
    app = rig.app
    enqueue_event({"func": func, "elid": str(payment_id)}, app.store, app.billing, app.config.notes)


def linked_client_with_service(rig: Any) -> tuple[int, int]:
    service.run_export(app=rig.app)
    (account, item), *_ = rig.sandbox.query(
        "SELECT i.account, MIN(i.id) FROM item i GROUP BY i.account ORDER BY i.account LIMIT 1")
    assert rig.link(Kind.CONTACT, account) and rig.link(Kind.LEAD, item)
    return int(account), int(item)


def test_a_paid_payment_is_noted_on_the_contact_and_its_leads_once(rig):
    account, item = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("1500.5"), items=[item], method="Банковская карта")
    event(rig, "payment.setpaid", pid)
    event(rig, "payment.setpaid", pid)           # the same event twice: still one row per target
    rig.sync()
    contact, lead = rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item)
    assert keyed(rig) == {("contacts", contact, pid, "paid"): 1, ("leads", lead, pid, "paid"): 1}
    (text,) = {n["params"]["text"] for n in notes(rig) if n["_entity_type"] == "contacts"}
    assert f"PAY-{pid}" in text and "1500.50 RUB" in text and "Банковская карта" in text and "оплачен" in text
    # a refund later (no event: the reconciler finds it) is a second note; the paid one stays single
    rig.sandbox.set_payment_status(pid, REFUNDED)
    reconcile_payments(rig.app.store, rig.app.billing, rig.app.config.notes, utcnow())   # sets the floor
    rig.app.store.set_cursor(FLOOR_CURSOR, "0")
    assert reconcile_payments(rig.app.store, rig.app.billing, rig.app.config.notes, utcnow()) == 2
    rig.sync()
    rig.sync()
    assert keyed(rig) == {("contacts", contact, pid, "paid"): 1, ("leads", lead, pid, "paid"): 1,
                          ("contacts", contact, pid, "refunded"): 1, ("leads", lead, pid, "refunded"): 1}
    # the day's counts (the panel's report and the status) hold the four notes
    (today,) = [c for c in rig.app.store.daily_counts(date(2000, 1, 1)).values() if c.get("note")]
    assert today["note"] == 4


def test_the_reconciler_starts_at_set_up_and_never_floods_history(rig):
    account, _ = linked_client_with_service(rig)
    old = rig.sandbox.add_payment(account, Decimal("10"))
    store, billing, config = rig.app.store, rig.app.billing, rig.app.config.notes
    assert reconcile_payments(store, billing, config, utcnow()) == 0        # the first scan sets the floor
    assert store.get_cursor(FLOOR_CURSOR) == str(old)
    new = rig.sandbox.add_payment(account, Decimal("20"), status=FRAUD)
    assert reconcile_payments(store, billing, config, utcnow()) == 1
    assert reconcile_payments(store, billing, config, utcnow()) == 0        # nothing twice
    rig.sync()
    assert {(p, s) for _, _, p, s in keyed(rig)} == {(new, "fraud")}


def test_the_states_that_make_notes_are_a_setting(rig):
    account, _ = linked_client_with_service(rig)
    config = rebuild(rig.app.config, {"notes": {"payment_states": ["paid"], "on_leads": False}})
    save_config(config, rig.app.paths, rig.app.presets)
    rig.app.reload_rules()
    cancelled = rig.sandbox.add_payment(account, Decimal("5"), status=CANCELED)
    paid = rig.sandbox.add_payment(account, Decimal("7"), status=PAID)
    event(rig, "payment.setcanceled", cancelled)
    event(rig, "payment.setpaid", paid)
    rig.sync()
    assert {(p, s) for _, _, p, s in keyed(rig)} == {(paid, "paid")}


def test_a_note_for_a_client_not_linked_yet_waits_for_its_contact(rig):
    from tests.sync.test_cli import amocrm

    new = rig.sandbox.add_client(name="Плательщик")
    pid = rig.sandbox.add_payment(new.account_id, Decimal("99"))
    event(rig, "payment.setpaid", pid)
    # the status says why it waits: its contact is not in amoCRM yet (nothing is wrong)
    assert rig.app.store.payment_note_counts().get("unlinked") == 1
    assert "1 waiting for their contact or lead in amoCRM" in amocrm("status")[1]
    enqueue_event({"func": "register", "elid": str(new.account_id)}, rig.app.store, rig.app.billing)
    rig.sync()
    assert keyed(rig) == {("contacts", rig.link(Kind.CONTACT, new.account_id), pid, "paid"): 1}
    assert "unlinked" not in rig.app.store.payment_note_counts()


def test_a_lost_answer_still_makes_exactly_one_note(rig, caplog):
    account, item = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("300"), items=[item])
    rig.emulator.control.add_fault(action="drop", path="^/api/v4/contacts/notes$", method="POST", count=1)
    rig.emulator.control.add_fault(action="after_commit", path="^/api/v4/leads/notes$", method="POST",
                                   status=504, count=1)
    event(rig, "payment.setpaid", pid)
    rig.sync()
    assert any("answer lost" in r.getMessage() for r in caplog.records)
    assert sum(keyed(rig).values()) == 2          # both applied, neither answered
    rig.sync()                                    # settle_after is 0 here: both adopted, none sent again
    rig.sync()
    contact, lead = rig.link(Kind.CONTACT, account), rig.link(Kind.LEAD, item)
    assert keyed(rig) == {("contacts", contact, pid, "paid"): 1, ("leads", lead, pid, "paid"): 1}
    done = rig.sandbox.query("SELECT status, note_id FROM amocrm_payment2note ORDER BY id")
    assert [s for s, _ in done] == ["done", "done"] and all(n for _, n in done)


def test_an_intent_whose_post_never_left_is_sent_again_after_settling(rig):
    account, _ = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("1"))
    event(rig, "payment.setpaid", pid)
    # a worker killed between the intent's commit and the POST: the intent is open, nothing in amoCRM
    (row_id,) = [r[0] for r in rig.sandbox.query("SELECT id FROM amocrm_payment2note")]
    rig.app.store.payment_note_intent(row_id, rig.link(Kind.CONTACT, account), "deadbeef0000")
    rig.sync()
    assert sum(keyed(rig).values()) == 1
    assert rig.sandbox.query("SELECT status FROM amocrm_payment2note") == [("done",)]


def test_cli_lists_refused_notes_revives_them_and_notes_a_payment_on_demand(rig):
    from tests.sync.test_cli import amocrm

    account, item = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("42"), items=[item])
    rig.emulator.control.add_fault(action="status", path="^/api/v4/leads/notes$", method="POST", status=400,
                                   count=1)
    event(rig, "payment.setpaid", pid)
    assert amocrm("sync")[0] == 0
    code, out, _ = amocrm("failed", "note")
    assert code == 0 and f"note payment {pid} (paid) on lead {item} (attempts 1): amoCRM refused" in out
    made = "payment notes: {} made, 0 pending, 0 waiting for their contact or lead in amoCRM, {} failed"
    assert made.format(1, 1) in amocrm("status")[1]
    assert amocrm("retry-failed", "note")[1] == "revived 1 failed notes\n"
    amocrm("sync")
    assert made.format(2, 0) in amocrm("status")[1]
    # a payment from before the set-up, noted by hand; a second time changes nothing
    old = rig.sandbox.add_payment(account, Decimal("1"), status=CANCELED)
    assert amocrm("resync", "payment", str(old))[1] == "payment notes queued: 1\n"
    assert amocrm("resync", "payment", str(old))[1] == "payment notes queued: 0\n"
    amocrm("sync")
    assert max(keyed(rig).values()) == 1 and {(p, s) for _, _, p, s in keyed(rig)} >= {(old, "canceled")}


def test_the_real_hook_and_worker_carry_a_payment_event_to_its_note(rig):
    from tests.harness import run_addon

    account, _ = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("77"), status=FRAUD)
    run = run_addon("amocrm_event", {"func": "payment.setfraud", "elid": str(pid)}, b"<doc><ok/></doc>")
    assert run.returncode == 0
    rig.sync()                                   # spool -> note rows -> the note
    assert keyed(rig) == {("contacts", rig.link(Kind.CONTACT, account), pid, "fraud"): 1}


def test_only_one_of_two_senders_takes_a_rows_intent(rig):
    account, _ = linked_client_with_service(rig)
    pid = rig.sandbox.add_payment(account, Decimal("3"))
    event(rig, "payment.setpaid", pid)
    (row_id,) = [r[0] for r in rig.sandbox.query("SELECT id FROM amocrm_payment2note")]
    contact = rig.link(Kind.CONTACT, account)
    # both read the row with no intent; the first to change it sends, the other leaves it alone
    assert rig.app.store.payment_note_intent(row_id, contact, "aaaaaaaaaaaa") is True
    assert rig.app.store.payment_note_intent(row_id, contact, "bbbbbbbbbbbb") is False
    assert rig.sandbox.query("SELECT token FROM amocrm_payment2note") == [("aaaaaaaaaaaa",)]
