"""The module's data removed and the module installed again: amoCRM's entities are adopted, not made twice.

An admin starting over (``amocrm-purge --yes``, then ``amocrm-install``), or moving billing to
a server without the module's tables: amoCRM still holds every contact, company and lead the
module made, each with its marker, and the new tables bind none of them. The authorization
finds the marker fields in amoCRM, so the export first binds what they mark (``sync/adopt.py``)
and then brings it up to date: no entity is created a second time, and what billing changed
meanwhile reaches amoCRM. Against MariaDB, the emulator and the real ``amocrm`` command; the
scan's rules against the fakes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.domain import KIND_ORDER, ClientUser, Kind
from billmgr_amocrm.markers import billmgr_id_of, marker_value
from billmgr_amocrm.store.migrations import drop_all
from billmgr_amocrm.sync.adopt import Adopter, adoption_pending, request_adoption
from tests.fakes import MARKERS, FakeAmo, FakeBilling, FakeStore, client, engine_on, payer
from tests.fakes import service as item
from tests.fixtures.mgr5 import make_root

from .conftest import Rig

REPO = Path(__file__).resolve().parents[2]


def purge_and_reinstall(rig: Rig) -> None:
    """What ``amocrm-purge --yes`` and a new ``amocrm-install`` leave: no module tables, a default
    etc/amocrm (no tokens, no field ids), no var state; billing and amoCRM untouched."""
    conf = (rig.root / "etc" / "amocrm" / "amocrm.conf").read_text(encoding="utf-8")
    assert drop_all(rig.app.conn)
    rig.app.close()
    shutil.rmtree(rig.root / "etc" / "amocrm")
    for state in (rig.root / "var").glob("amocrm*"):
        shutil.rmtree(state) if state.is_dir() else state.unlink()
    make_root(rig.root.parent)
    default = (REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8")
    assert '"settle_after": 0.0' in conf   # the rig's value, kept so the tests play the clock
    (rig.root / "etc" / "amocrm" / "amocrm.conf").write_text(
        default.replace('"settle_after": 60.0', '"settle_after": 0.0'), encoding="utf-8")


def authorize_again(rig: Rig) -> Any:
    integ = rig.emulator.integration
    code = rig.emulator.control.auth_code(integ["client_id"])
    return service.authorize(rig.emulator.url, integ["client_id"], integ["client_secret"],
                             integ["redirect_uri"], code)


def entity_writes(rig: Rig, since: int, method: str) -> dict[str, int]:
    """Items sent per entity type by ``method`` since ``since``."""
    sent: dict[str, int] = {}
    for r in rig.requests_since(since, method=method):
        entity = r["path"].replace("/api/v4/", "").strip("/")
        if entity in ("contacts", "companies", "leads"):
            sent[entity] = sent.get(entity, 0) + len(r.get("body") or [])
    return sent


@pytest.mark.parametrize("command", [("amocrm", "export"), ("amocrm_task", "--once")],
                         ids=["the admin's export", "cron's worker"])
def test_purge_and_reinstall_then_export_binds_every_entity_again_and_makes_none_twice(
        rig: Rig, command: tuple[str, str]) -> None:
    assert rig.sync().failed == 0
    before = {kind: rig.all_links(kind) for kind in KIND_ORDER}
    counts = {entity: len(rig.entities(entity)) for entity in ("contacts", "companies", "leads")}
    assert all(before.values()) and all(counts.values())
    renamed = sorted(before[Kind.CONTACT])[0]
    purge_and_reinstall(rig)
    rig.sandbox.edit_client(renamed, realname="Renamed while the module was gone")
    newcomer = rig.sandbox.add_client(name="Signed up after the reinstall").account_id
    seq = rig.request_seq()

    result = authorize_again(rig)

    assert result.export_requested
    app = build()
    try:
        assert set(adoption_pending(app.store)) == set(KIND_ORDER)
    finally:
        app.close()
    proc = subprocess.run([sys.executable, str(REPO / "sbin" / command[0]), command[1]], env=dict(os.environ),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # nothing made twice: the one contact created is the newcomer's
    assert entity_writes(rig, seq, "POST") == {"contacts": 1}
    now_held = {entity: len(rig.entities(entity)) for entity in counts}
    assert now_held == dict(counts, contacts=counts["contacts"] + 1)
    for entity in counts:
        assert max(rig.marker_counts(entity).values()) == 1, entity
    app = build()
    try:
        for kind in KIND_ORDER:
            after = app.store.links(kind, list(range(1, 100000)))
            if kind is Kind.CONTACT:
                after.pop(newcomer)
            assert after == before[kind], kind
        assert not adoption_pending(app.store)
        contact = app.store.links(Kind.CONTACT, [renamed])[renamed]
    finally:
        app.close()
    # what billing changed meanwhile reached amoCRM, through an update of the adopted contact
    assert rig.entity("contacts", contact)["name"] == "Renamed while the module was gone"
    assert contact == before[Kind.CONTACT][renamed]
    assert entity_writes(rig, seq, "PATCH")["contacts"] >= len(before[Kind.CONTACT])


def test_a_first_install_makes_its_fields_and_reads_nothing_to_adopt(emulator: Any) -> None:
    """A field made by this set-up cannot be on any entity: the first export reads no list."""
    integ = emulator.integration
    service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                      integ["auth_code"])
    app = build()
    try:
        assert not adoption_pending(app.store)
        service.sync_now(app=app)
    finally:
        app.close()
    lists = [r["path"].rstrip("/") for r in emulator.control.requests() if r["method"] == "GET"
             and r["path"].rstrip("/") in ("/api/v4/contacts", "/api/v4/companies", "/api/v4/leads")]
    # one read of the (empty) contact list: the clients are bound to contacts people made
    # (``sync/match.py``), never to what a marker names
    assert lists == ["/api/v4/contacts"]


# ----------------------------------------------------------------------------- the scan, on fakes
def made_in_amocrm(amo: FakeAmo, entity: str, kind: Kind, billmgr_id: Any, name: str = "",
                   contacts: Sequence[int] = (), phone: str = "") -> int:
    value = billmgr_id if isinstance(billmgr_id, str) else marker_value(kind, billmgr_id)
    fields = [{"field_id": MARKERS[kind], "values": [{"value": value}]}]
    fields += [{"field_code": "PHONE", "values": [{"value": phone}]}] if phone else []
    outcome = amo.create(entity, [{"request_id": "r", "name": name or f"Client {billmgr_id}",
                                   "custom_fields_values": fields,
                                   "_embedded": {"contacts": [{"id": c} for c in contacts]}}])
    return int(outcome.ids["r"])


def test_the_scan_binds_the_older_of_two_and_leaves_what_is_bound_foreign_or_gone() -> None:
    billing = FakeBilling()
    billing.clients_.update({i: client(i) for i in (1, 2, 3, 4)})
    amo, store = FakeAmo(), FakeStore()
    older = made_in_amocrm(amo, "contacts", Kind.CONTACT, 1)
    made_in_amocrm(amo, "contacts", Kind.CONTACT, 1)                  # a duplicate: the older is kept
    two = made_in_amocrm(amo, "contacts", Kind.CONTACT, 2)
    store.put_links(Kind.CONTACT, [(2, 9999)])                          # bound already: stays as it is
    made_in_amocrm(amo, "contacts", Kind.CONTACT, 77)                  # no such client in billing
    made_in_amocrm(amo, "contacts", Kind.CONTACT, 3, name="Another billing's client 3")
    three = made_in_amocrm(amo, "contacts", Kind.CONTACT, 3)           # newer, but the one that is ours
    made_in_amocrm(amo, "contacts", Kind.CONTACT, "billmgr:contact:04", name="Client 4")  # not our marker
    made_in_amocrm(amo, "contacts", Kind.CONTACT, "billmgr:lead:4", name="Client 4")      # another kind's
    amo.create("contacts", [{"request_id": "m", "name": "Client 4"}])                    # a manager's own
    request_adoption(store, [Kind.CONTACT])

    adopted = Adopter(amo, billing, store, MARKERS).run()

    assert adopted == 2
    assert store.links(Kind.CONTACT, [1, 2, 3, 4, 77]) == {1: older, 2: 9999, 3: three}
    assert two not in store.linked_to(Kind.CONTACT, [two])
    assert [(i.billmgr_id, i.reason) for i in store.claim_after(Kind.CONTACT, 10, later(), None)] == \
        [(1, "resync"), (3, "resync")]
    assert not adoption_pending(store)


def later() -> Any:
    from datetime import datetime, timedelta, timezone
    return datetime.now(timezone.utc) + timedelta(hours=1)


def test_a_set_up_saved_again_before_the_export_finds_its_own_fields_and_adopts_nothing(
        emulator: Any) -> None:
    """The fields the first save made are found by the second (the same code saved again, as after
    a set-up that stopped midway): this database made them, so there is nothing to adopt (the
    panel's status said "first binding what amoCRM already holds" on a fresh install)."""
    integ = emulator.integration
    args = (emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
            integ["auth_code"])
    service.authorize(*args)
    again = service.authorize(*args)
    assert again.export_requested
    app = build()
    try:
        assert not adoption_pending(app.store)
    finally:
        app.close()


def test_only_what_is_provably_this_billings_is_adopted_when_two_billings_share_the_account() -> None:
    """Client 1 of this billing is "Client 1" with phone +7 999 000-11-22; another BILLmanager
    writing to the same account has its own client 1 and lead 10 (same markers, other people)."""
    billing = FakeBilling()
    ours = client(1, name="ООО Ромашка")
    billing.clients_[1] = replace(ours, users=(ClientUser(id=1, login="r", realname="Иван Петров",
                                                          phone="8 (999) 000-11-22"),))
    billing.clients_[2] = client(2)
    billing.payers_.update({5: payer(5, account=1), 6: payer(6, account=2)})
    billing.services_.update({10: item(10, account=1), 11: item(11, account=1), 12: item(12, account=2)})
    amo, store = FakeAmo(), FakeStore()
    mine = made_in_amocrm(amo, "contacts", Kind.CONTACT, 1, name="Петров Иван", phone="+79990001122")
    theirs = made_in_amocrm(amo, "contacts", Kind.CONTACT, 2, name="Somebody Else")
    company = made_in_amocrm(amo, "companies", Kind.COMPANY, 5, name="LLC 6")        # linked to our contact
    amo.link("companies", [{"entity_id": company, "to_entity_id": mine, "to_entity_type": "contacts"}])
    named = made_in_amocrm(amo, "companies", Kind.COMPANY, 6, name=" llc  6 ")          # its payer's name
    lead = made_in_amocrm(amo, "leads", Kind.LEAD, 10, name="x", contacts=[mine])
    made_in_amocrm(amo, "leads", Kind.LEAD, 11, name="x", contacts=[theirs])   # another client's lead
    made_in_amocrm(amo, "leads", Kind.LEAD, 12, name="x", contacts=[theirs])   # its contact was not ours
    request_adoption(store, KIND_ORDER)

    assert Adopter(amo, billing, store, MARKERS).run() == 4

    assert store.links(Kind.CONTACT, [1, 2]) == {1: mine}
    assert store.links(Kind.COMPANY, [5, 6]) == {5: company, 6: named}
    assert store.links(Kind.LEAD, [10, 11, 12]) == {10: lead}


def test_a_stopped_scan_goes_on_from_its_cursor_and_kinds_wait_for_their_field() -> None:
    billing = FakeBilling()
    billing.clients_.update({i: client(i) for i in range(1, 8)})
    billing.payers_[5] = payer(5, account=1)
    amo, store = FakeAmo(), FakeStore()
    ids = {i: made_in_amocrm(amo, "contacts", Kind.CONTACT, i) for i in range(1, 8)}
    company = made_in_amocrm(amo, "companies", Kind.COMPANY, 5, name="LLC 5")
    request_adoption(store, [Kind.CONTACT, Kind.COMPANY])
    pages: list[tuple[str, int]] = []
    real = amo.marked_since

    def small_pages(entity: str, field_id: int, created_since: int = 0) -> Any:
        pages.append((entity, created_since))
        return real(entity, field_id, created_since, page_size=3)

    amo.marked_since = small_pages   # type: ignore[method-assign]
    stops = iter([False, True])      # SIGTERM after the second page of contacts
    first = Adopter(amo, billing, store, MARKERS, should_stop=lambda: next(stops, False)).run()
    reached = amo.entities["contacts"][ids[6]]["created_at"]
    assert first == 6 and adoption_pending(store) == {Kind.CONTACT: reached, Kind.COMPANY: 0}
    # the company's field is not known yet (a set-up that stopped early): contacts go on, it waits
    rest = Adopter(amo, billing, store, {Kind.CONTACT: MARKERS[Kind.CONTACT]}).run()
    assert rest == 1 and adoption_pending(store) == {Kind.COMPANY: 0}
    assert store.links(Kind.CONTACT, list(ids)) == ids
    assert Adopter(amo, billing, store, MARKERS).run() == 1
    assert store.links(Kind.COMPANY, [5]) == {5: company} and not adoption_pending(store)
    assert pages == [("contacts", 0), ("contacts", reached), ("companies", 0)]


def test_a_marker_names_its_own_kind_and_a_plain_id() -> None:
    assert billmgr_id_of(Kind.LEAD, "billmgr:lead:42") == 42
    for other in ("billmgr:contact:42", "billmgr:lead:", "billmgr:lead:-1", "billmgr:lead:4 2",
                  "billmgr:lead:٤٢", "billmgr:lead:²", "billmgr:leads:42", "billmgr:lead:007"):
        assert billmgr_id_of(Kind.LEAD, other) is None, other


def test_amocrm_adopt_on_a_healthy_install_reads_and_changes_nothing_and_status_shows_it(rig: Rig) -> None:
    from .test_cli import amocrm

    assert rig.sync().failed == 0
    before = {kind: rig.all_links(kind) for kind in KIND_ORDER}
    code, out, _ = amocrm("adopt")
    assert code == 0 and "adoption requested" in out
    code, out, _ = amocrm("status")
    assert code == 0
    assert "adopting what amoCRM holds with the module's marker: contacts, companies, leads" in out
    seq = rig.request_seq()

    assert rig.sync().failed == 0

    # every page read, nothing bound anew, nothing queued, no write
    assert {kind: rig.all_links(kind) for kind in KIND_ORDER} == before
    assert not entity_writes(rig, seq, "POST") and not entity_writes(rig, seq, "PATCH")
    listed = {r["path"] for r in rig.requests_since(seq, method="GET")}
    assert listed == {"/api/v4/contacts", "/api/v4/companies", "/api/v4/leads"}
    code, out, _ = amocrm("status")
    assert "adopting" not in out


def test_an_outage_during_the_scan_stops_the_pass_before_anything_is_sent_and_the_next_one_goes_on() -> None:
    billing = FakeBilling()
    billing.clients_.update({i: client(i) for i in (1, 2)})
    engine, amo, store, _ = engine_on(billing)
    held = {i: made_in_amocrm(amo, "contacts", Kind.CONTACT, i) for i in (1, 2)}
    store.enqueue_many(Kind.CONTACT, [1, 2], "export")
    request_adoption(store, [Kind.CONTACT])
    amo.outage = True
    setup = len(amo.calls)

    stopped = engine.run_pass()

    assert stopped.stopped == "retry_later" and stopped.done == 0
    assert adoption_pending(store) == {Kind.CONTACT: 0} and not store.links(Kind.CONTACT, [1, 2])
    assert [c[0] for c in amo.calls[setup:]] == ["GET"]   # the first page, refused: nothing else
    amo.outage = False
    report = engine.run_pass()
    assert report.stopped is None and report.adopted == 2 and report.done == 2
    assert store.links(Kind.CONTACT, [1, 2]) == held and len(amo.entities["contacts"]) == 2
    assert not [c for c in amo.calls[setup:] if c[0] == "POST"]
