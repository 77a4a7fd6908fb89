"""Binding clients to the contacts people already made in amoCRM, before the first export.

A provider connecting the module rarely starts from an empty amoCRM: its managers made
contacts by hand, web forms and mail made more. The first export would make a second contact
for each of those clients, and the sales team would find their deals, notes and tasks on one
copy and billing's data on the other. So the set-up that asks for the first export also asks
for this (``sync.match_existing``, on by default; :func:`request_matching`), and the next
engine pass, before it sends anything, reads every contact in the account (the list, 250 a
request) and binds a client to a contact nobody's marker claims when they share an e-mail or
a phone, normalized as the module writes them (``rules/contacts.py``), and neither side has
another candidate: a key that names two clients, or two contacts, binds none of them (a
reseller's mailbox, an office switchboard), and those clients get a contact of their own.
Names are not evidence: two people share a name more often than a mailbox.

A bound contact is queued like an adopted one: the export brings it to what billing holds
(its name, e-mails and phones, the mapped fields, the rules' tags); its deals, notes, tasks,
hand-made tags and unmapped fields stay. The scan is read whole before anything is bound
(uniqueness is a property of the whole account) and is not resumable: stopped, it starts
over at the next pass (pages are read one after another: 20,000 contacts took 30 s with
amoCRM answering in 0.3 s, bench figure 8).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from ..domain import Kind
from ..ports import AmoApi, BillingReader, RuleSet, Store
from .adopt import REASON, contact_keys_of, entity_keys

log = logging.getLogger(__name__)

CURSOR = "match:contact"
PENDING = "pending"
CHUNK = 1000


def request_matching(store: Store) -> None:
    """Bind clients to the contacts people made, before the first contact is sent."""
    store.set_cursor(CURSOR, PENDING)


def matching_pending(store: Store) -> bool:
    return store.get_cursor(CURSOR) == PENDING


def cancel_matching(store: Store) -> None:
    """The admin turned it off (``sync.match_existing``) before the first pass: every client
    gets a contact of its own."""
    store.set_cursor(CURSOR, "")
    log.info("clients are not bound to the contacts already in amoCRM: sync.match_existing is off")


@dataclass
class Matches:
    """What :func:`match` found: client -> contact, and how many clients a shared key left out."""

    pairs: dict[int, int] = field(default_factory=dict)
    shared: int = 0


def match(clients: Mapping[int, set[str]], contacts: Mapping[int, set[str]]) -> Matches:
    """Pairs (client, contact) that share a key and have no other candidate on either side."""
    holders: dict[str, set[int]] = {}
    for amocrm_id, keys in contacts.items():
        for key in keys:
            holders.setdefault(key, set()).add(amocrm_id)
    candidates: dict[int, set[int]] = {}
    for client, keys in clients.items():
        found = set().union(*(holders.get(key, set()) for key in keys)) if keys else set()
        if found:
            candidates[client] = found
    claimed: dict[int, set[int]] = {}
    for client, found in candidates.items():
        for amocrm_id in found:
            claimed.setdefault(amocrm_id, set()).add(client)
    result = Matches()
    for client, found in sorted(candidates.items()):
        if len(found) == 1 and len(claimed[next(iter(found))]) == 1:
            result.pairs[client] = next(iter(found))
        else:
            result.shared += 1
    return result


class Matcher:
    """Reads the account's contacts and binds the clients they provably are (module docstring)."""

    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store, rules: RuleSet,
                 marker_field_id: int, *, between_pages: Callable[[], None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.rules = rules
        self.marker_field_id = marker_field_id
        self.between_pages = between_pages
        self.should_stop = should_stop

    def run(self) -> int:
        """How many clients were bound; 0 and still pending when the scan was stopped."""
        log.info("binding clients to the contacts already in amoCRM (same e-mail or phone) "
                 "before the first export")
        contacts: dict[int, set[str]] = {}
        pages = 0
        for page in self.amo.marked_since("contacts", self.marker_field_id, 0):
            for entity in page.unmarked:
                keys = entity_keys(entity, names=False)
                if keys:
                    contacts[entity.amocrm_id] = keys
            pages += 1
            self.between_pages()
            if self.should_stop():
                log.info("binding clients to existing contacts stopped after %d pages; it starts over "
                         "next time", pages)
                return 0
        taken = self.store.linked_to(Kind.CONTACT, sorted(contacts))
        free = {amocrm_id: keys for amocrm_id, keys in contacts.items() if amocrm_id not in taken}
        found = match(dict(self._clients()), free)
        with self.store.transaction():
            refused = self.store.put_links(Kind.CONTACT, sorted(found.pairs.items()))
            bound = [client for client in sorted(found.pairs) if client not in refused]
            self.store.enqueue_many(Kind.CONTACT, bound, REASON)
            self.store.set_cursor(CURSOR, "")
        log.info("bound %d clients to contacts already in amoCRM (%d contacts without the module's "
                 "marker read, %d pages); %d clients share an e-mail or phone with other clients or "
                 "contacts and get a contact of their own", len(bound), len(contacts), pages, found.shared)
        return len(bound)

    def _clients(self) -> Iterable[tuple[int, set[str]]]:
        """The clients the rules send that have no contact yet (nor one being made), with their keys."""
        for ids in self.billing.iter_ids(Kind.CONTACT, 0, CHUNK):
            linked = self.store.links(Kind.CONTACT, ids)
            making = self.store.open_creates(Kind.CONTACT, ids)
            free = [i for i in ids if i not in linked and i not in making]
            for client_id, client in self.billing.clients(free).items():
                if self.rules.wants(Kind.CONTACT, client):
                    keys = contact_keys_of(client, names=False)
                    if keys:
                        yield client_id, keys
