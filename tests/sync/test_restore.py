"""BILLmanager's database restored from a backup: nothing made twice, amoCRM back to what billing holds.

An admin restores the database (a mysqldump, BILLmanager's own backup, a replica promoted
without its last writes) while cron keeps running the module. Everything the module committed
after the backup is gone from the database, while amoCRM keeps what it made: the bindings of
the entities made since, and what they were last sent as. ``sync/timeline.py`` notices it from
this host's ``var/amocrm/timeline.json`` and has the next pass adopt and re-send. Against
MariaDB (``mysqldump`` and ``mysql`` as an admin types them), the emulator and cron's real
``amocrm_task --once``; the rules of the judging in pure tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import pytest

from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.markers import marker_value
from billmgr_amocrm.service import run_renewals_now
from billmgr_amocrm.sync.timeline import (
    CLOCK_SLACK,
    QUIET_ENV,
    Restore,
    Seen,
    Stamp,
    WentBack,
    after,
    judge,
    restore_over,
)

from .conftest import Rig
from .test_cli import amocrm
from .test_payment_notes import event, keyed, linked_client_with_service
from .test_renewal_tasks import RULE, expiring_service, open_keys
from .test_renewal_tasks import configure as renewal_rules

REPO = Path(__file__).resolve().parents[2]


def mysql_args(tool: str, settings: Any) -> list[str]:
    args = [tool, "-h", settings.host, "-P", str(settings.port), "-u", settings.user]
    return args + ([f"-p{settings.password}"] if settings.password else [])


def backup(rig: Rig, tables: Sequence[str] = ()) -> bytes:
    settings = rig.sandbox.settings
    command = [*mysql_args("mysqldump", settings), "--single-transaction", settings.database, *tables]
    return subprocess.run(command, check=True, capture_output=True, timeout=120).stdout


def table_names(rig: Rig) -> list[str]:
    return sorted(str(name) for (name,) in rig.sandbox.query("SHOW TABLES"))


def restore(rig: Rig, dump: bytes) -> None:
    rig.app.close()          # the module's process holds no table open while the dump drops them
    rig.sandbox.close()
    settings = rig.sandbox.settings
    subprocess.run([*mysql_args("mysql", settings), settings.database], input=dump, check=True,
                   capture_output=True, timeout=120)


def cron_once() -> str:
    proc = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                          env=dict(os.environ),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(autouse=True)
def restore_over_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore here is over when ``mysql`` returns; the wait for a restore still running has
    its own test."""
    monkeypatch.setenv(QUIET_ENV, "0")


def test_a_restored_backup_makes_nothing_twice_and_amocrm_shows_what_billing_holds_again(rig: Rig) -> None:
    assert rig.sync().failed == 0
    store, sandbox = rig.app.store, rig.sandbox
    # signed up just before the backup, sent just after it: the backup has them queued, unbound
    late = sandbox.add_client(name="Поздний Клиент", email="late@example.com",
                              realname="Поздний Клиент").account_id
    late_service = sandbox.open_service(late)
    store.enqueue(Kind.CONTACT, late, "edit")
    store.enqueue(Kind.LEAD, late_service, "open")
    renamed = sorted(rig.all_links(Kind.CONTACT))[0]
    old_name = rig.entity("contacts", rig.link(Kind.CONTACT, renamed) or 0)["name"]
    dump = backup(rig)

    # after the backup: both sent, a client renamed and sent, a client who later vanishes
    sandbox.edit_client(renamed, realname="Renamed After The Backup")
    store.enqueue(Kind.CONTACT, renamed, "edit")
    gone = sandbox.add_client(name="Ушедший Клиент", email="gone@example.com", realname="Ушедший").account_id
    store.enqueue(Kind.CONTACT, gone, "edit")
    assert rig.sync().failed == 0
    late_contact, late_lead = rig.link(Kind.CONTACT, late), rig.link(Kind.LEAD, late_service)
    gone_contact = rig.link(Kind.CONTACT, gone)
    assert late_contact and late_lead and gone_contact
    assert rig.entity("contacts", rig.link(Kind.CONTACT, renamed) or 0)["name"] == "Renamed After The Backup"
    timeline = json.loads((rig.root / "var" / "amocrm" / "timeline.json").read_text(encoding="utf-8"))

    restore(rig, dump)
    # BILLmanager hands the vanished client's id to the next sign-up: someone else entirely
    stranger = sandbox.add_client(name="Другой Человек", email="other@example.org",
                                  realname="Другой").account_id
    assert stranger == gone
    app = build()
    try:
        app.store.enqueue(Kind.CONTACT, stranger, "edit")
    finally:
        app.close()
    seq = rig.request_seq()

    log = cron_once()

    task_log = (rig.root / "var" / "amocrm_task.log").read_text(encoding="utf-8")
    assert "the database went back in time" in task_log
    app = build()
    try:
        # bound again, not made again: one entity per marker, the late client's very contact and deal
        assert max(rig.marker_counts("companies").values()) == 1
        assert max(rig.marker_counts("leads").values()) == 1
        counts = rig.marker_counts("contacts")
        # the vanished client's old contact keeps its marker beside the stranger's (left for people)
        assert {m: n for m, n in counts.items() if n > 1} == {marker_value(Kind.CONTACT, gone): 2}
        assert app.store.links(Kind.CONTACT, [late]) == {late: late_contact}
        assert app.store.links(Kind.LEAD, [late_service]) == {late_service: late_lead}
        # the stranger got a contact of their own; the vanished client's stays theirs, untouched
        stranger_contact = app.store.links(Kind.CONTACT, [stranger])[stranger]
        assert stranger_contact != gone_contact
        assert rig.entity("contacts", gone_contact)["name"] != "Другой Человек"
        # amoCRM shows what billing holds now: the rename was undone by the restore
        assert rig.entity("contacts", rig.link(Kind.CONTACT, renamed) or 0)["name"] == old_name
        # nothing but the stranger was created
        made = [r for r in rig.requests_since(seq, method="POST") if r["path"] in (
            "/api/v4/contacts", "/api/v4/companies", "/api/v4/leads")]
        assert sum(len(r.get("body") or []) for r in made) == 1, log
        assert app.store.queue_stats().depth == 0
    finally:
        app.close()
    after_file = json.loads((rig.root / "var" / "amocrm" / "timeline.json").read_text(encoding="utf-8"))
    assert after_file["database"] != timeline["database"] and timeline["database"] in after_file["left"]

    # the next run finds nothing to redo: no second adoption, nothing re-sent
    seq = rig.request_seq()
    cron_once()
    assert rig.requests_since(seq, method="PATCH") == [] and rig.requests_since(seq, method="POST") == []


def test_a_company_linked_after_the_backup_leaves_a_client_the_restore_left_without_its_payer(
        rig: Rig) -> None:
    """Found by proof scenario O11 at full scale (28 links): a legal payer added after the backup
    made a company, linked to the client's contact and deals; the restore took the payer and its
    binding away, and amoCRM kept showing the client on that company."""
    assert rig.sync().failed == 0
    sandbox = rig.sandbox
    client = sandbox.add_client(name="Без юрлица", email="nolegal@example.com",
                                realname="Без юрлица").account_id
    item = sandbox.open_service(client)
    other = sandbox.add_client(name="Другой Клиент", email="second@example.com", realname="Второй").account_id
    kept = sandbox.add_payer(other, name='ООО "Остаётся"')
    rig.app.store.enqueue_many(Kind.CONTACT, [client, other], "edit")
    rig.app.store.enqueue(Kind.LEAD, item, "open")
    rig.app.store.enqueue(Kind.COMPANY, kept, "edit")
    assert rig.sync().failed == 0
    late_item = sandbox.open_service(client)      # in the backup, sent only after it (bound later)
    dump = backup(rig)

    payer = sandbox.add_payer(client, name='ООО "После бэкапа"')       # after the backup
    rig.app.store.enqueue(Kind.COMPANY, payer, "edit")
    rig.app.store.enqueue(Kind.LEAD, late_item, "open")
    assert rig.sync().failed == 0
    contact, lead = rig.link(Kind.CONTACT, client), rig.link(Kind.LEAD, item)
    late_lead = rig.link(Kind.LEAD, late_item)
    company = rig.link(Kind.COMPANY, payer)
    amo = rig.app.amo()
    assert amo.get("contacts", [contact])[contact]["_embedded"]["companies"][0]["id"] == company
    other_contact, kept_company = rig.link(Kind.CONTACT, other), rig.link(Kind.COMPANY, kept)

    restore(rig, dump)
    cron_once()
    cron_once()

    held = rig.app.amo().get("contacts", [contact, other_contact])
    assert held[contact]["_embedded"]["companies"] == [], "the client has no legal payer any more"
    leads = rig.app.amo().get("leads", [lead, late_lead])
    assert leads[lead]["_embedded"]["companies"] == [] and leads[late_lead]["_embedded"]["companies"] == []
    assert rig.link(Kind.LEAD, late_item) == late_lead           # adopted again, after the release
    assert [c["id"] for c in held[other_contact]["_embedded"]["companies"]] == [kept_company]
    assert rig.entity("companies", company)["name"] == 'ООО "После бэкапа"'   # stays in amoCRM, people's


def test_the_same_backup_restored_twice_is_noticed_twice(rig: Rig) -> None:
    assert rig.sync().failed == 0
    dump = backup(rig)
    client = rig.sandbox.add_client(name="Первый Раз", email="first@example.com").account_id
    rig.app.store.enqueue(Kind.CONTACT, client, "edit")
    assert rig.sync().failed == 0
    first = rig.link(Kind.CONTACT, client)

    restore(rig, dump)
    rig.sandbox.add_client(name="Первый Раз", email="first@example.com")   # signs up again: the same id
    app = build()
    try:
        app.store.enqueue(Kind.CONTACT, client, "edit")
    finally:
        app.close()
    cron_once()                                   # noticed; the same person: adopted by e-mail
    app = build()
    try:
        assert app.store.links(Kind.CONTACT, [client]) == {client: first}
    finally:
        app.close()

    restore(rig, dump)                            # the same backup once more
    rig.sandbox.add_client(name="Первый Раз", email="first@example.com")
    app = build()
    try:
        app.store.enqueue(Kind.CONTACT, client, "edit")
    finally:
        app.close()
    cron_once()
    assert rig.marker_counts("contacts")[marker_value(Kind.CONTACT, client)] == 1


def test_a_restore_still_running_under_cron_sends_nothing_until_the_tables_stay_as_they_are(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """mysql restores a dump a table at a time while cron goes on: a run that meets the restored
    ``amocrm_cursor`` while the leads' bindings and the queue are still the newer ones must not
    adopt or queue yet (the rest of the restore would overwrite both)."""
    monkeypatch.setenv(QUIET_ENV, "3")
    assert rig.sync().failed == 0
    store = rig.app.store
    client = rig.sandbox.add_client(name="Поздний", email="late2@example.com", realname="Поздний").account_id
    item = rig.sandbox.open_service(client)
    store.enqueue(Kind.CONTACT, client, "edit")
    store.enqueue(Kind.LEAD, item, "open")
    names = table_names(rig)
    first = [n for n in names if n <= "amocrm_cursor"]       # the order mysqldump writes them in
    dump_first, dump_rest = backup(rig, first), backup(rig, [n for n in names if n > "amocrm_cursor"])
    assert rig.sync().failed == 0
    made = rig.link(Kind.CONTACT, client), rig.link(Kind.LEAD, item)

    restore(rig, dump_first)                  # half-way through the restore, cron runs
    seq = rig.request_seq()
    cron_once()
    assert rig.requests_since(seq, method="POST") == [] and rig.requests_since(seq, method="PATCH") == []
    restore(rig, dump_rest)                   # the rest: the leads' bindings and the queue go back too
    cron_once()                               # the tables changed a moment ago: still nothing
    assert rig.requests_since(seq, method="POST") == [] and rig.requests_since(seq, method="PATCH") == []
    time.sleep(3.5)
    cron_once()

    app = build()
    try:
        assert (app.store.links(Kind.CONTACT, [client]).get(client),
                app.store.links(Kind.LEAD, [item]).get(item)) == made
        assert app.store.queue_stats().depth == 0
    finally:
        app.close()
    assert max(rig.marker_counts("contacts").values()) == 1
    assert max(rig.marker_counts("leads").values()) == 1
    task_log = (rig.root / "var" / "amocrm_task.log").read_text(encoding="utf-8")
    assert "nothing is sent until then" in task_log and "have stayed as they are" in task_log


def test_payment_notes_and_renewal_tasks_made_after_the_backup_are_found_not_made_again(rig: Rig) -> None:
    account, item = linked_client_with_service(rig)
    renewal_rules(rig, RULE)
    expiring = expiring_service(rig, 5)
    # paid just before the backup, noted just after it: the backup holds the notes still to make
    paid = rig.sandbox.add_payment(account, Decimal("990"), items=[item], method="Карта")
    event(rig, "payment.setpaid", paid)
    dump = backup(rig)

    assert rig.sync().failed == 0                     # the notes are made
    assert run_renewals_now(app=rig.app).created == 1  # and the renewal task
    made_notes, made_tasks = keyed(rig), open_keys(rig)
    assert sorted(made_notes.values()) == [1, 1] and list(made_tasks.values()) == [1]

    restore(rig, dump)
    cron_once()                                       # notices the restore, finds the notes
    code, out, _ = amocrm("renewals")                 # the admin's command: finds the task
    assert code == 0, out

    assert keyed(rig) == made_notes and open_keys(rig) == made_tasks
    app = build()
    try:
        assert app.store.renewal_task_counts().get("open") == 1 and expiring
        assert app.store.payment_note_counts().get("done") == 2
    finally:
        app.close()


# ------------------------------------------------------------------------------ the judging
# ------------------------------------------------------------------------------ the judging

S = 1_000_000   # a second in the stamps' microseconds


def test_a_database_older_than_this_hosts_last_stamp_went_back_to_its_own() -> None:
    seen = Seen(Stamp("a1", 2000 * S))
    assert judge(Stamp("a1", 2000 * S - 1), seen) == WentBack(2000 * S - 1, 2000 * S)
    assert judge(Stamp("a1", 2000 * S), seen) is None          # what this host left
    assert judge(Stamp("a1", 2500 * S), seen) is None          # another host ran a pass since
    assert WentBack((1500 + CLOCK_SLACK) * S, 0).adopt_since() == 1500


def test_a_database_without_a_stamp_went_back_to_before_the_stamps_unless_this_host_never_wrote_one() -> None:
    assert judge(None, Seen(Stamp("a1", 2000 * S))) == WentBack(0, 2000 * S)
    assert WentBack(0, 2000 * S).adopt_since() == 0
    assert judge(None, None) is None and judge(Stamp("a1", 1), None) is None


def test_another_database_is_not_compared_but_one_this_host_left_is() -> None:
    seen = Seen(Stamp("b2", 3000 * S), left={"a1": 2000 * S})
    assert judge(Stamp("c3", 10 * S), seen) is None            # db.conf names another database now
    assert judge(Stamp("a1", 1500 * S), seen) == WentBack(1500 * S, 2000 * S)   # the old backup once more


def test_a_restore_is_over_once_the_tables_stayed_as_they_are_and_as_long_passed_since_the_notice() -> None:
    noticed = Restore(since=10, noticed=1000, pending=True)
    assert Restore.parse(noticed.text()) == noticed and Restore.parse("10 1000") == Restore(10, 1000)
    assert not restore_over(noticed, now=1100, unchanged_for=500, quiet=120)   # noticed too lately
    assert not restore_over(noticed, now=1200, unchanged_for=30, quiet=120)    # a table made 30 s ago
    assert restore_over(noticed, now=1200, unchanged_for=150, quiet=120)
    assert restore_over(noticed, now=1200, unchanged_for=None, quiet=120)      # the server cannot say


def test_a_stamp_only_grows_whatever_the_clock_says() -> None:
    assert after(Stamp("a1", 2000 * S), Seen(Stamp("a1", 2500 * S)), now=1000 * S).at == 2500 * S + 1
    assert after(Stamp("a1", 2000 * S), None, now=3000 * S) == Stamp("a1", 3000 * S)
    fresh = after(None, None, now=5 * S)
    assert fresh.at == 5 * S and fresh.database
    assert Stamp.parse(fresh.text()) == fresh
    assert Stamp.parse("") is None and Stamp.parse("x y") is None and Stamp.parse("x 1.5") is None
