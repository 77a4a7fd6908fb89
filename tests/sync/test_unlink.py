"""An admin's unlink is for good: the old amoCRM entity loses the module's marker.

``amocrm unlink contact 12`` (or the panel's Unlink) says "this amoCRM contact is not client
12's any more; make a new one". The old contact stays with the sales team's deals, but it used
to keep its "BILLmanager ID" marker, so amoCRM held two contacts naming client 12: the audit
counted a duplicate, and after a reinstall the adoption bound the old one again (of two with
one marker, the older). Now the next pass takes the marker off first (``sync/unmark.py``).
Against MariaDB, the emulator and the real commands; the rules of what is cleared against the
fakes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.errors import AmbiguousWriteError
from billmgr_amocrm.markers import marker_identity, marker_value
from billmgr_amocrm.sync.unmark import Unmarker
from tests.fake_store import FakeStore
from tests.fakes import MARKERS, FakeAmo, FakeBilling

from .conftest import Rig
from .test_adopt import authorize_again, purge_and_reinstall
from .test_cli import amocrm
from .test_match import contact as contact_as_read

REPO = Path(__file__).resolve().parents[2]


def marker_of(rig: Rig, entity: str, amocrm_id: int) -> Optional[str]:
    field_ids = set(rig.app.marker_fields().values())
    for cf in rig.entity(entity, amocrm_id).get("custom_fields_values") or []:
        if cf.get("field_id") in field_ids and cf.get("values"):
            return marker_identity(str(cf["values"][0]["value"]))
    return None


def test_an_unlinked_contact_loses_its_marker_keeps_its_deal_and_a_reinstall_keeps_the_new_one(
        rig: Rig) -> None:
    assert rig.sync().failed == 0
    billing = rig.app.billing
    accounts = [int(a) for (a,) in rig.sandbox.query("SELECT id FROM account ORDER BY id")]
    payers, services = billing.legal_payers_by_account(accounts), billing.services_by_account(accounts)
    # a client with a company and deals the module made
    account = next(a for a in accounts if rig.app.store.links(Kind.COMPANY, payers.get(a, []))
                   and rig.app.store.links(Kind.LEAD, services.get(a, [])))
    companies = sorted(rig.app.store.links(Kind.COMPANY, payers[account]).values())
    leads = sorted(rig.app.store.links(Kind.LEAD, services[account]).values())
    old = rig.link(Kind.CONTACT, account)
    assert old is not None and marker_of(rig, "contacts", old) == marker_value(Kind.CONTACT, account)
    assert sorted(related(rig, old, "leads")) == leads
    deal = a_managers_deal(rig, old)

    assert amocrm("unlink", "contact", str(account))[1] == "unlinked 1\n"
    code, out, _ = amocrm("sync")        # no resync needed: the unlink queued the client and its deals

    assert code == 0 and out.startswith(f"sync: {1 + len(companies) + len(leads)} sent"), out
    new = rig.link(Kind.CONTACT, account)
    assert new not in (None, old)
    assert marker_of(rig, "contacts", new) == marker_value(Kind.CONTACT, account)
    assert marker_of(rig, "contacts", old) is None        # the old one is nobody's now
    # the sales team's deal stays on the old contact; billing's deals and company are the new one's
    assert related(rig, old, "leads") == [deal["id"]]
    assert sorted(related(rig, new, "leads")) == leads
    assert related(rig, new, "companies") == companies[-1:]
    assert max(rig.marker_counts("contacts").values()) == 1
    assert not rig.app.store.unmarks_pending()

    # the module's data removed and installed again: the adoption binds the new contact, not the old
    purge_and_reinstall(rig)
    authorize_again(rig)
    proc = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                          env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    app = build()
    try:
        assert app.store.links(Kind.CONTACT, [account]) == {account: new}
    finally:
        app.close()


def a_managers_deal(rig: Rig, contact: int) -> dict[str, Any]:
    body = [{"name": "A manager's deal", "_embedded": {"contacts": [{"id": contact}]}}]
    for _ in range(20):    # the test's requests share the account's 7 a second with the module's
        reply = rig.emulator.session().post(f"{rig.emulator.url}/api/v4/leads", json=body, timeout=10)
        if reply.status_code != 429:
            break
        time.sleep(0.5)
    reply.raise_for_status()
    return dict(reply.json()["_embedded"]["leads"][0])


def related(rig: Rig, contact: int, entity: str) -> list[int]:
    """The ids of a contact's leads or companies, as amoCRM shows them."""
    return [int(e["id"]) for e in contact_as_read(rig.emulator, contact)["_embedded"].get(entity, [])]


def test_what_is_cleared_only_the_marker_that_still_names_the_unlinked_record() -> None:
    amo, store = FakeAmo(), FakeStore()
    field = MARKERS[Kind.CONTACT]

    def made(marker: str) -> int:
        outcome = amo.create("contacts", [{"request_id": marker, "name": marker, "custom_fields_values": [
            {"field_id": field, "values": [{"value": marker}]}]}])
        return int(outcome.ids[marker])

    plain = made(marker_value(Kind.CONTACT, 1))
    with_token = made(marker_value(Kind.CONTACT, 2) + " bmsync-0a1b2c")   # a create's marker, never updated
    another = made(marker_value(Kind.CONTACT, 7))       # the marker of another record by now
    rebound = made(marker_value(Kind.CONTACT, 4))
    gone = made(marker_value(Kind.CONTACT, 5))
    store.put_links(Kind.CONTACT, [(1, plain), (2, with_token), (3, another), (4, rebound), (5, gone)])
    assert store.delete_links(Kind.CONTACT, [1, 2, 3, 4, 5]) == 5
    store.put_links(Kind.CONTACT, [(4, rebound)])       # bound again before the pass (an adoption)
    amo.deleted.add(("contacts", gone))                 # deleted in amoCRM meanwhile

    cleared = Unmarker(amo, FakeBilling(), store, MARKERS).run()

    assert cleared == 2
    assert amo.markers_of("contacts", field, [plain, with_token, another, rebound]) == {
        plain: "", with_token: "", another: marker_value(Kind.CONTACT, 7),
        rebound: marker_value(Kind.CONTACT, 4)}
    assert not store.unmarks_pending()
    assert [c for c in amo.calls if c[0] == "PATCH"] == [("PATCH", "contacts", 2)]


def test_an_unanswered_clearing_stays_asked_and_the_next_pass_clears_it() -> None:
    amo, store = FakeAmo(), FakeStore()
    field = MARKERS[Kind.LEAD]
    outcome = amo.create("leads", [{"request_id": "x", "name": "Service 3", "custom_fields_values": [
        {"field_id": field, "values": [{"value": marker_value(Kind.LEAD, 3)}]}]}])
    lead = int(outcome.ids["x"])
    store.put_links(Kind.LEAD, [(3, lead)])
    store.delete_links(Kind.LEAD, [3])
    update = amo.update

    def unanswered(entity: str, items: Any) -> Any:
        update(entity, items)                      # applied, and the answer lost
        raise AmbiguousWriteError("timed out", request_ids=[i["request_id"] for i in items], cause="timeout")

    amo.update = unanswered   # type: ignore[method-assign]
    assert Unmarker(amo, FakeBilling(), store, MARKERS).run() == 0
    assert store.unmarks(Kind.LEAD, 10) == [(lead, 3)]
    amo.update = update       # type: ignore[method-assign]
    # the marker is off already: the next pass reads it and has nothing to send
    assert Unmarker(amo, FakeBilling(), store, MARKERS).run() == 0
    assert not store.unmarks_pending()
    assert amo.markers_of("leads", field, [lead]) == {lead: ""}
