"""Adopting what amoCRM already holds: the module's own entities whose bindings this database lost.

When the module's data was removed and it was installed again (``amocrm-purge``, then
``amocrm-install``), or the billing moved to a server without the module's tables, amoCRM
still holds every contact, company and lead the module made, each carrying its
"BILLmanager ID" marker, while the tables bind none of them: the export that follows the
authorization would create every one of them a second time.

So the set-up that asks for the first export of this database also asks for an adoption of
each kind whose marker field it found in amoCRM and this database did not make (a field this
install made cannot be on an earlier install's entity; :func:`note_fields_made` keeps their
ids, so a set-up saved twice before the export does not scan for nothing):
:func:`request_adoption`. The next engine pass, before it sends
anything, reads that kind's entities in amoCRM (the list, in creation order; not the
search, whose index lags) and binds each marker to its billing entity when the billing
entity exists, neither side is bound yet and the entity is provably that billing entity's
(:meth:`Adopter._evidence`: a marker names an id, not a billing, and two BILLmanagers may
write to one account); of two amoCRM entities with one marker, the older. Adopted entities
are queued, so the export brings them up to date with PATCHes (clearing what billing no
longer holds, as any update) instead of creating them again.

The scan is resumable (the ``adopt:<kind>`` cursor holds the creation time it reached,
saved with each page's bindings) and runs under the engine lease like every write.
An admin can ask for it again with ``amocrm adopt``.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Mapping, Sequence

from ..domain import KIND_ORDER, Client, Kind
from ..errors import AmbiguousWriteError, FixData, RetryLater
from ..foundation.clock import utcnow
from ..markers import MarkedEntity, MarkedPage, billmgr_id_of
from ..ports import AmoApi, BillingReader, Store
from ..rules.attributes import attributes_of
from ..rules.contacts import normalize_emails, normalize_phones
from ..rules.mapping import lead_name
from .unlinks import company_links, follow_up

log = logging.getLogger(__name__)

CURSOR = "adopt:{kind}"
# the id of a marker field this database's install made (``note_fields_made``)
MADE_HERE = "marker-field-made:{kind}"
# the queue reason adopted entities are sent with (an update, as a resync's)
REASON = "resync"


def _cursor(kind: Kind) -> str:
    return CURSOR.format(kind=kind.value)


def note_fields_made(store: Store, ids: Mapping[Kind, int]) -> None:
    """The marker fields this database's install made in amoCRM (kind -> field id): no earlier
    install can have marked anything with them. Noted in the database, not the process: a
    set-up saved again before the export (the same code, a fixed field) finds them made."""
    for kind, field_id in ids.items():
        store.set_cursor(MADE_HERE.format(kind=kind.value), str(field_id))


def kinds_to_adopt(store: Store, ids: Mapping[Kind, int]) -> list[Kind]:
    """The kinds whose marker field (kind -> id in use) this database did not make: found in
    amoCRM, so an earlier install (purged, or on another server) may have marked entities."""
    return [kind for kind in KIND_ORDER
            if store.get_cursor(MADE_HERE.format(kind=kind.value)) != str(ids[kind])]


def request_adoption(store: Store, kinds: Sequence[Kind], since: int = 0) -> None:
    """Adopt these kinds before anything more of them is sent: the entities made from
    ``since`` (unix time; 0: the oldest) on. A scan already asked for from earlier stays so."""
    pending = adoption_pending(store)
    for kind in kinds:
        start = max(0, int(since))
        store.set_cursor(_cursor(kind), str(min(start, pending.get(kind, start))))


def adoption_pending(store: Store) -> dict[Kind, int]:
    """Kind -> the creation time (unix) its scan goes on from, for the kinds still to adopt."""
    pending: dict[Kind, int] = {}
    for kind in KIND_ORDER:
        value = store.get_cursor(_cursor(kind)) or ""
        if value.isdigit():
            pending[kind] = int(value)
    return pending


class Adopter:
    """Binds what amoCRM holds to billing, a page at a time (see the module docstring)."""

    def __init__(self, amo: AmoApi, billing: BillingReader, store: Store,
                 marker_field_ids: Mapping[Kind, int], *,
                 between_pages: Callable[[], None] = lambda: None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.amo = amo
        self.billing = billing
        self.store = store
        self.marker_field_ids = marker_field_ids
        # renews the engine lease through a long scan (raises when it was lost)
        self.between_pages = between_pages
        self.should_stop = should_stop

    def run(self) -> int:
        """Adopt every pending kind, contacts first; how many entities were bound. A scan stopped
        (SIGTERM, or amoCRM's error raised to the caller) goes on from its cursor next time."""
        adopted = 0
        for kind, since in adoption_pending(self.store).items():
            field_id = self.marker_field_ids.get(kind)
            if field_id is None:
                continue   # no marker field known yet: nothing to read it by; the set-up comes first
            bound, finished = self._scan(kind, field_id, since)
            adopted += bound
            if not finished:
                break
        return adopted

    def _scan(self, kind: Kind, field_id: int, since: int) -> tuple[int, bool]:
        """How many were bound, and whether the scan reached the end of the list."""
        log.info("adopting the %s amoCRM already holds with a marker (from creation time %d): "
                 "the module's tables do not bind them", kind.amo_entity, since)
        bound = pages = 0
        for page in self.amo.marked_since(kind.amo_entity, field_id, since):
            bound += self._bind(kind, page)
            pages += 1
            self.between_pages()
            if self.should_stop():
                log.info("adopting %s stopped after %d pages (%d bound); it goes on next time",
                         kind.amo_entity, pages, bound)
                return bound, False
        self.store.set_cursor(_cursor(kind), "")
        log.info("adopted %d %s amoCRM already held (%d pages read)", bound, kind.amo_entity, pages)
        return bound, True

    def _bind(self, kind: Kind, page: MarkedPage) -> int:
        candidates = [(b, e) for e in page.marked if (b := billmgr_id_of(kind, e.marker)) is not None]
        pairs: list[tuple[int, int]] = []
        if candidates:
            bound = self.store.links(kind, sorted({b for b, _ in candidates}))
            taken = self.store.linked_to(kind, sorted({e.amocrm_id for _, e in candidates}))
            free = [(b, e) for b, e in candidates if b not in bound and e.amocrm_id not in taken]
            ours = self._evidence(kind, sorted({b for b, _ in free}))
            chosen: dict[int, int] = {}
            for b, entity in free:   # id order: of two entities with one marker, the older of ours
                if b not in chosen and ours(b, entity):
                    chosen[b] = entity.amocrm_id
            pairs = sorted(chosen.items())
            left = sorted({e.amocrm_id for b, e in free if chosen.get(b) != e.amocrm_id})
            if left:
                log.info("%d %s carry a marker of this billing but nothing else of what it holds now "
                         "(another billing's, changed beyond recognition since, or a second copy): not "
                         "adopted: %s", len(left), kind.amo_entity, ", ".join(map(str, left[:10])))
            if kind is Kind.COMPANY:
                # a company unbound, or adopted but still linked to another client's contact or
                # deals, leaves them; before the page's cursor moves, so one cut short is read again
                linked = sorted({e.amocrm_id for _, e in candidates
                                 if e.amocrm_id not in taken and e.contact_ids})
                if linked:
                    owner = self.billing.accounts_of(Kind.COMPANY, sorted(chosen))
                    self._release(linked, {a: owner[b] for b, a in chosen.items() if b in owner})
        with self.store.transaction():
            refused = self.store.put_links(kind, pairs)
            adopted = [b for b, _ in pairs if b not in refused]
            if adopted:
                self.store.enqueue_many(kind, adopted, REASON)
            self.store.set_cursor(_cursor(kind), str(page.last_created))
        return len(adopted)

    def _release(self, companies: Sequence[int], keep: Mapping[int, int]) -> None:
        """Companies with a marker linked to the module's contacts, found unbound or adopted by
        this scan (``keep``: adopted company -> its payer's client): an unbound one is none of
        those clients' payers' (the restore lost the payer that had one, a payer deleted under
        an earlier install, an id given to another client's payer since), and an adopted one is
        only its own client's. So they leave the module's contacts and leads of other clients
        (``unlinks.company_links``), and each such client's main company is queued to take the
        place. The company stays in amoCRM, people's."""
        found_links = company_links(self.amo, self.billing, self.store, companies,
                                    self.marker_field_ids.get(Kind.LEAD), keep)
        leaving = {c: found for c, found in found_links.items() if found.targets}
        items = [{"entity_id": company, "to_entity_id": target, "to_entity_type": entity}
                 for company, found in leaving.items() for entity, target in found.targets]
        if not items:
            return
        try:
            refused = self.amo.unlink(Kind.COMPANY.amo_entity, items)
        except AmbiguousWriteError as exc:
            # unlinking again is harmless: the page is read again from its cursor next time
            raise RetryLater(f"unlinking companies from clients not theirs went unanswered: {exc}") from exc
        except FixData as exc:
            log.warning("companies could not be unlinked from the module's contacts and leads of "
                        "clients not theirs: %s", exc)
            return
        for reason in refused.values():
            log.warning("not unlinked: %s", reason)
        with self.store.transaction():
            items_of = [i for found in leaving.values() for i in found.items]
            self.store.record_synced_many(Kind.LEAD, [(item, "") for item in items_of], utcnow())
            accounts = set().union(*(found.accounts for found in leaving.values()))
            follow_up(self.store, self.billing, accounts, items_of)
        log.warning("%d companies with the module's marker were unlinked from the module's contacts "
                    "and leads of clients whose payers they are not (any more): %s", len(leaving),
                    ", ".join(map(str, sorted(leaving)[:10])))

    def _evidence(self, kind: Kind, ids: Sequence[int]) -> Callable[[int, MarkedEntity], bool]:
        """Whether an amoCRM entity is provably its billing entity's (which must exist).

        A marker alone says "billing entity N", not which billing: two BILLmanagers writing to
        one account share the marker fields, and their ids overlap. So a contact is adopted when
        it shares an e-mail, a phone, the name or the login with its client; a company or a lead
        when it is linked to the contact of its client (adopted first) or bears the name the
        module gives it. What differs is left alone, and its billing entity is made anew."""
        if not ids:
            return lambda b, entity: False
        if kind is Kind.CONTACT:
            keys = {b: contact_keys_of(client) for b, client in self.billing.clients(ids).items()}
            return lambda b, entity: b in keys and bool(keys[b] & entity_keys(entity))
        owners: dict[int, int] = {}
        names: dict[int, str] = {}
        if kind is Kind.COMPANY:
            for b, payer in self.billing.payers(ids).items():
                owners[b], names[b] = payer.account_id, payer.name
        else:
            for b, service in self.billing.services(ids).items():
                # the name the module gives it: type, tariff, what it serves and its id
                owners[b], names[b] = service.account_id, lead_name(attributes_of(Kind.LEAD, service))
        contacts = self.store.links(Kind.CONTACT, sorted(set(owners.values())))
        return lambda b, entity: b in owners and (
            contacts.get(owners[b]) in entity.contact_ids or same_name(names[b], entity.name))


def same_name(ours: str, theirs: str) -> bool:
    return bool(_name(ours)) and _name(ours) == _name(theirs)


def contact_keys_of(client: Client, *, names: bool = True) -> set[str]:
    """What identifies a client's contact: the account's name and its users' names, e-mails and
    phones, normalized as the module writes them to amoCRM (``rules/contacts.py``); without the
    names when ``names`` is off (``sync/match.py``: a name is no evidence without a marker)."""
    users = client.users
    named = [client.name, *(u.realname for u in users), *(u.login for u in users)] if names else []
    phones = [p for u in users for p in normalize_phones(u.phone, client.country)]
    return _keys(named, [u.email for u in users], phones)


def entity_keys(entity: MarkedEntity, *, names: bool = True) -> set[str]:
    return _keys([entity.name] if names else [], entity.emails,
                 [p for raw in entity.phones for p in normalize_phones(raw)])


def _keys(names: Iterable[str], emails: Iterable[str], phones: Iterable[str]) -> set[str]:
    return ({f"name:{n}" for n in map(_name, names) if n}
            | {f"email:{e}" for raw in emails for e in normalize_emails(raw)}
            | {f"phone:{p}" for p in phones})


def _name(value: str) -> str:
    return " ".join(value.split()).casefold()
