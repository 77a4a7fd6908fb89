"""Figure 8: the first export into an amoCRM account the sales team already filled.

amoCRM holds contacts people made before the module came: some are billing's clients (their
e-mail in another letter case, or their phone written another way), most are not, and a few
share a mailbox. The first export reads the account's contacts once and binds a client to a
contact only when they share an e-mail or phone and neither has another candidate
(``sync/match.py``); then it exports. Measured at amoCRM's limit (7 requests/s by arrival):
the scan's requests and seconds, what was bound, what was made, and that nothing was made twice.
amoCRM answers with the figure-7 latency (0.3 s +-20 %, a network of 0-50 ms each way): the list is
read a page after another, so the answer time, not the rate limit, sets the scan's length.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .grid import NETWORK, latency
from .report import Figure, Results
from .sitesetup import Site
from .throughput import MAX_RATE, export_in_child, last_seq

# of the clients, the share whose person in amoCRM has their e-mail, and their phone
BY_EMAIL, BY_PHONE = 0.5, 0.1
SHARED = 20        # people's contacts with one mailbox between them
DELAY = 0.3        # seconds amoCRM takes to answer, +-20 %


def people(site: Site, clients: int, contacts: int) -> Tuple[List[Dict[str, Any]], Dict[int, int]]:
    """The contacts people made (bodies), and for those provably one client's: index -> account.

    The chosen clients' first enabled user gets an address or a number no one else has (the
    sandbox's own data shares some on purpose); the person's copy writes it another way."""
    from tests.sandbox import Sandbox

    box = Sandbox(site.db)
    try:
        accounts = [int(a) for (a,) in box.query(
            "SELECT account FROM user WHERE enabled = 'on' GROUP BY account ORDER BY account")]
        emails, phones = int(clients * BY_EMAIL), int(clients * BY_PHONE)
        made: List[Dict[str, Any]] = []
        expected: Dict[int, int] = {}
        for n, account in enumerate(accounts[:emails + phones]):
            (user,), = box.query("SELECT MIN(id) FROM user WHERE account = %s AND enabled = 'on'",
                                 (account,))
            if n < emails:
                address = f"client{account}@bench.example"
                box.query("UPDATE user SET email = %s WHERE id = %s", (address, user))
                made.append(_contact(f"С сайта {account}", email=f"Client{account}@Bench.Example"))
            else:
                number = f"9{account:09d}"
                box.query("UPDATE user SET phone = %s WHERE id = %s",
                          (f"+7 ({number[:3]}) {number[3:6]}-{number[6:8]}-{number[8:]}", user))
                made.append(_contact(f"Звонок {account}", phone=f"8{number}"))
            expected[len(made) - 1] = account
    finally:
        box.close()
    for n in range(SHARED):
        made.append(_contact(f"Офис {n}", email="office@shared-mailbox.example"))
    while len(made) < contacts:
        made.append(_contact(f"Лид {len(made)}", email=f"lead{len(made)}@elsewhere.example"))
    return made, expected


def _contact(name: str, email: str = "", phone: str = "") -> Dict[str, Any]:
    fields = []
    if email:
        fields.append({"field_code": "EMAIL", "values": [{"value": email, "enum_code": "WORK"}]})
    if phone:
        fields.append({"field_code": "PHONE", "values": [{"value": phone, "enum_code": "WORK"}]})
    return {"name": name, "custom_fields_values": fields}


def seed(site: Site, contacts: List[Dict[str, Any]]) -> List[int]:
    """Made in the account with its limit off (the people took months); their ids in order."""
    control = site.emulator.control
    control.set_rate(enabled=False)
    session = site.emulator.session()
    ids: List[int] = []
    for start in range(0, len(contacts), 250):
        reply = session.post(f"{site.emulator.url}/api/v4/contacts", json=contacts[start:start + 250],
                             timeout=60)
        reply.raise_for_status()
        ids += [int(c["id"]) for c in reply.json()["_embedded"]["contacts"]]
    control.set_rate(enabled=True)
    return ids


def contact_links(site: Site) -> Dict[int, int]:
    from tests.sandbox import Sandbox

    box = Sandbox(site.db)
    try:
        rows = box.query("SELECT billmgr_id, amocrm_id FROM amocrm_account2contact")
        return {int(b): int(a) for b, a in rows}
    finally:
        box.close()


def run(results: Results, clients: int, contacts: int) -> None:
    with Site.create(rate_limit=float(MAX_RATE), sync={"network_margin": NETWORK[1]}) as site:
        site.sandbox(clients=clients, services=clients)
        site.start_emulator(limit=True)
        made, expected = people(site, clients, contacts)
        ids = seed(site, made)
        site.emulator.control.set_latency(**latency(DELAY))
        since = last_seq(site)
        site.authorize()
        export = export_in_child(site)
        log = site.emulator.control.requests(since)
        links = contact_links(site)
        everyone = site.emulator.control.state()["entities"]["contacts"]
        alive = sum(1 for c in everyone if not c.get("is_deleted"))
    scans = [e for e in log if e["method"] == "GET" and e["path"].rstrip("/") == "/api/v4/contacts"]
    span = (scans[-1]["wall_time"] - scans[0]["wall_time"]) if len(scans) > 1 else 0.0
    people_ids = set(ids)
    bound = {b: a for b, a in links.items() if a in people_ids}
    right = {expected_account: ids[i] for i, expected_account in expected.items()}
    made_by_module = len(links) - len(bound)
    ok = bound == right and alive == len(made) + made_by_module and len(set(links.values())) == len(links)
    results.add(Figure(
        f"8. first export into an account holding {len(made):,} contacts people made ({len(right):,} of "
        f"them provably one of the {clients:,} clients'), at 7 req/s, answers {DELAY:g} s",
        f"contacts read in {len(scans)} requests, {span:.1f} s; bound {len(bound):,} (the provable ones: "
        f"{'all, and only them' if bound == right else 'NOT exactly'}), made {made_by_module:,}; "
        f"the export {export.seconds:.1f} s",
        "binds exactly the provable ones, no second copy", ok))
    results.note(f"matching: {len(made):,} contacts made by people ({SHARED} sharing one mailbox, "
                 f"{len(made) - len(right) - SHARED:,} nobody's); {len(right):,} share an e-mail "
                 f"({int(clients * BY_EMAIL):,}) or a phone ({int(clients * BY_PHONE):,}) with one client "
                 "only; "
                 f"bound {len(bound):,}; the module made {made_by_module:,} contacts for the other clients; "
                 f"{alive:,} contacts in the account after; {len(log):,} requests during the set-up and the "
                 "export.")
