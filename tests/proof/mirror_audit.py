"""The audit's mirror checks (issue 15): amoCRM holds what the rules compute from BILLmanager now.

``body_mismatches``: every field the module maps shows exactly the rules' value, absences
included (a field the rules clear must be empty in amoCRM; a price the rules leave empty
reads as amoCRM's "no budget", 0). ``company_mismatches``: a client's contact and its
leads are linked to the client's main company (its newest legal payer with a company) or,
when it has none, to no company. ``notes_twice`` and ``open_tasks_twice`` (issue 17): no
payment noted twice on one entity, no two open tasks for one service and expiry date.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Set

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.markers import marker_identity

if TYPE_CHECKING:
    from .support import ProofRig

NO_BUDGET = 0     # how amoCRM shows a lead without a price
HEAD_FIELDS = ("name", "first_name", "last_name", "price")


def _shows(want: Mapping[str, Any], got: Mapping[str, Any]) -> bool:
    """A value item sent shows in what amoCRM holds (amoCRM adds enum ids and codes); a marker
    may still carry the token of the create that made it (``ports.marker_with_token``)."""
    def same(key: str, value: Any) -> bool:
        shown = got.get(key)
        if isinstance(value, str) and value.startswith("billmgr:") and isinstance(shown, str):
            return marker_identity(shown) == value
        return shown == value
    return all(same(key, value) for key, value in want.items())


def body_mismatches(label: str, expected: Mapping[str, Any], shown: Mapping[str, Any]) -> List[str]:
    """What amoCRM shows that differs from the rules' body for the entity now."""
    found = []
    for name in HEAD_FIELDS:
        if name not in expected:
            continue
        want = NO_BUDGET if name == "price" and expected[name] is None else expected[name]
        if shown.get(name) != want:
            found.append(f"{label}: {name} {shown.get(name)!r} != {want!r}")
    held = list(shown.get("custom_fields_values") or [])
    by_id = {cf.get("field_id"): cf for cf in held}
    by_code = {cf.get("field_code"): cf for cf in held if cf.get("field_code")}
    for want in expected.get("custom_fields_values") or []:
        key = want.get("field_id") or want.get("field_code")
        got = by_id.get(want["field_id"]) if "field_id" in want else by_code.get(want.get("field_code"))
        values = list((got or {}).get("values") or [])
        if want.get("values") is None:
            if values:
                found.append(f"{label}: field {key} should be empty, shows {values!r}")
        elif len(values) != len(want["values"]) or not all(map(_shows, want["values"], values)):
            found.append(f"{label}: field {key} shows {values!r}, not {want['values']!r}")
    return found


def _company_edges(rig: ProofRig) -> Dict[str, Dict[int, int]]:
    """amoCRM's links: contact -> its company, lead -> its company."""
    edges: Dict[str, Dict[int, int]] = {"contacts": {}, "leads": {}}
    for edge in rig.control.state()["links"]:
        if edge["to_entity_type"] == "companies" and edge["entity_type"] in edges:
            edges[edge["entity_type"]][int(edge["entity_id"])] = int(edge["to_entity_id"])
    return edges


def accounts_of(rig: ProofRig, keys: Iterable[Any]) -> Set[int]:
    """The clients the keys are about (a contact's own id; a payer's or a service's account)."""
    accounts: Set[int] = set()
    for kind, billmgr_id in keys:
        if kind is Kind.CONTACT:
            accounts.add(int(billmgr_id))
    for kind, table in ((Kind.COMPANY, "profile"), (Kind.LEAD, "item")):
        ids = sorted({int(b) for k, b in keys if k is kind})
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ", ".join(["%s"] * len(part))
            accounts.update(int(r[0]) for r in rig.sql(
                f"SELECT DISTINCT account FROM {table} WHERE id IN ({marks})", part))  # noqa: S608
    return accounts


def company_mismatches(rig: ProofRig, accounts: Iterable[int]) -> List[str]:
    """Clients whose contact or leads are not linked to their main company (or to none)."""
    wanted = sorted(set(accounts))
    if not wanted:
        return []
    billing = rig.app.billing
    legal = billing.legal_payers_by_account(wanted)
    items = billing.services_by_account(wanted)
    failed = {(Kind(k), int(b)) for k, b in
              rig.sql("SELECT kind, billmgr_id FROM amocrm_queue WHERE state = 'failed'")}
    links = {kind: rig.links(kind) for kind in Kind}
    edges = _company_edges(rig)
    found = []
    for account in wanted:
        payers = legal.get(account, [])
        if any((Kind.COMPANY, p) in failed for p in payers) or (Kind.CONTACT, account) in failed:
            continue   # a refused payer or contact: its record says why
        with_company = [p for p in payers if p in links[Kind.COMPANY]]
        main: Optional[int] = links[Kind.COMPANY][max(with_company)] if with_company else None
        contact = links[Kind.CONTACT].get(account)
        if contact is not None and edges["contacts"].get(contact) != main:
            found.append(f"client {account}: contact {contact} has company {edges['contacts'].get(contact)}, "
                         f"not {main}")
        for item in items.get(account, []):
            lead = links[Kind.LEAD].get(item)
            if lead is not None and (Kind.LEAD, item) not in failed and edges["leads"].get(lead) != main:
                found.append(f"client {account}: lead {lead} has company {edges['leads'].get(lead)}, "
                             f"not {main}")
    return found


# ------------------------------------------------------------------ notes and tasks (issue 17)
NOTE_KEY = re.compile(r"\[billmgr:payment:(\d+):(\w+) bmsync-\w+\]")
TASK_KEY = re.compile(r"\[billmgr:renewal:(\d+):([\d-]+) bmsync-\w+\]")


def notes_twice(state: Mapping[str, Any]) -> Dict[str, int]:
    """"<entity> <id> payment <p> <state>" -> notes amoCRM holds, where more than one: a payment
    noted twice on one contact or lead (always empty)."""
    counts: Dict[str, int] = {}
    for note in state.get("notes", ()):
        found = NOTE_KEY.search(str((note.get("params") or {}).get("text") or ""))
        if found and not note.get("_deleted"):
            key = f"{note['_entity_type']} {note['entity_id']} payment {found.group(1)} {found.group(2)}"
            counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}


def open_tasks_twice(state: Mapping[str, Any]) -> Dict[str, int]:
    """"service <item> expiring <date>" -> open tasks amoCRM holds, where more than one (always empty)."""
    counts: Dict[str, int] = {}
    for task in state.get("tasks", ()):
        found = TASK_KEY.search(str(task.get("text") or ""))
        if found and not task.get("is_completed") and not task.get("_deleted"):
            key = f"service {found.group(1)} expiring {found.group(2)}"
            counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}
