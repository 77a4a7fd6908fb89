"""In-memory fakes of the ports (ports/), for the pure and engine tests.

They keep the contracts' observable behaviour (amoCRM ids and markers, batch
outcomes, faults) and record calls so tests can assert on them. The store's fake,
held to the MySQL store's contract, is ``tests.fake_store.FakeStore``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Iterator, Optional, Sequence

from billmgr_amocrm.domain import Client, Kind, Payer, Service, ServiceEvent
from billmgr_amocrm.errors import AmbiguousWriteError, RetryLater
from billmgr_amocrm.markers import SYNC_TAG_PREFIX, MarkedEntity, MarkedPage, MarkerSearch, marker_identity
from billmgr_amocrm.ports import AmoPayload, BatchOutcome, MappingContext
from billmgr_amocrm.sync.engine import Engine
from tests.fake_store import FakeStore as FakeStore  # the store's fake has a module of its own

MARKER_NAME = "BILLmanager ID"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- amoCRM
def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """One call at a time, as amoCRM applies each request whole: lanes call the fake at once."""
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return call


@dataclass
class FakeAmo:
    """amoCRM as a dict of entities; faults are switched on per test."""

    entities: dict[str, dict[int, dict[str, Any]]] = field(
        default_factory=lambda: {"contacts": {}, "companies": {}, "leads": {}})
    fields: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"contacts": [], "companies": [], "leads": []})
    links: list[tuple[str, int, str, int]] = field(default_factory=list)
    unlinked: list[tuple[str, int, str, int]] = field(default_factory=list)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    deleted: set[tuple[str, int]] = field(default_factory=set)
    reject: Callable[[str, dict[str, Any]], Optional[str]] = lambda entity, item: None
    # a link amoCRM refuses (400): its reason, else None
    reject_link: Callable[[str, dict[str, Any]], Optional[str]] = lambda entity, link: None
    unlinked: list[tuple[str, int, str, int]] = field(default_factory=list)
    lose_next_create_response: int = 0
    outage: bool = False
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    def _guard(self, method: str, entity: str, n: int) -> None:
        self.calls.append((method, entity, n))
        if self.outage:
            raise RetryLater("amoCRM is down", method=method, path=entity, status=503)

    @_serialized
    def create(self, entity: str, items: Sequence[dict[str, Any]]) -> BatchOutcome:
        self._guard("POST", entity, len(items))
        rejected = {i["request_id"]: r for i in items if (r := self.reject(entity, i))}
        ids = {}
        for item in items:
            if item["request_id"] in rejected:
                continue
            new_id = next(self._ids)
            stored = {k: v for k, v in item.items() if k != "request_id"}
            stored["created_at"] = int(datetime.now(timezone.utc).timestamp())
            stored["tags"] = {t["name"] for t in item.get("tags_to_add", [])}
            self.entities[entity][new_id] = stored
            ids[item["request_id"]] = new_id
        if self.lose_next_create_response:
            self.lose_next_create_response -= 1
            raise AmbiguousWriteError("response lost", request_ids=list(ids), outcome=BatchOutcome())
        return BatchOutcome(ids=ids, rejected=rejected)

    @_serialized
    def update(self, entity: str, items: Sequence[dict[str, Any]]) -> BatchOutcome:
        self._guard("PATCH", entity, len(items))
        rejected = {i["request_id"]: r for i in items if (r := self.reject(entity, i))}
        ids, missing = {}, []
        for item in items:
            rid = item["request_id"]
            if rid in rejected:
                continue
            if (entity, item["id"]) in self.deleted or item["id"] not in self.entities[entity]:
                missing.append(rid)
                continue
            stored = self.entities[entity][item["id"]]
            tags = stored.get("tags", set())
            tags |= {t["name"] for t in item.get("tags_to_add", [])}
            tags -= {t["name"] for t in item.get("tags_to_delete", [])}
            stored.update({k: v for k, v in item.items() if k not in ("request_id", "tags_to_add",
                                                                      "tags_to_delete")})
            stored["tags"] = tags
            ids[rid] = item["id"]
        return BatchOutcome(ids=ids, rejected=rejected, missing=missing)

    @_serialized
    def get(self, entity: str, ids: Sequence[int], with_: Sequence[str] = ()) -> dict[int, dict[str, Any]]:
        self._guard("GET", entity, len(ids))
        return {i: self.entities[entity][i] for i in ids
                if i in self.entities[entity] and (entity, i) not in self.deleted}

    @_serialized
    def markers_of(self, entity: str, marker_field_id: int, ids: Sequence[int]) -> dict[int, str]:
        self._guard("GET", entity, len(ids))
        found: dict[int, str] = {}
        for amo_id in ids:
            if amo_id in self.entities[entity] and (entity, amo_id) not in self.deleted:
                fields = self.entities[entity][amo_id].get("custom_fields_values") or []
                values = [str(v["value"]) for cf in fields if cf.get("field_id") == marker_field_id
                          for v in cf.get("values") or []]
                found[amo_id] = marker_identity(values[0]) if values else ""
        return found

    @_serialized
    def find_by_marker(self, entity: str, marker_field_id: int, markers: Sequence[str], *,
                       token: str = "", created_since: Optional[int] = None,
                       max_pages: int = 4) -> MarkerSearch:
        """Like amoCRM without search lag: the token search finds every entity carrying it."""
        self._guard("GET", entity + "?marker", len(markers))
        found: dict[str, int] = {}
        for amo_id, stored in sorted(self.entities[entity].items()):
            if (entity, amo_id) in self.deleted:
                continue
            if not token and created_since is not None and stored["created_at"] < created_since:
                continue
            for cf in stored.get("custom_fields_values") or []:
                if cf.get("field_id") == marker_field_id:
                    value = str(cf["values"][0]["value"])
                    if token and not value.endswith(SYNC_TAG_PREFIX + token) and created_since is None:
                        continue
                    marker = marker_identity(value)
                    if marker in markers:
                        found.setdefault(marker, amo_id)
        return MarkerSearch(found, complete=True)

    def marked_since(self, entity: str, marker_field_id: int, created_since: int = 0,
                     page_size: int = 250) -> Iterator[MarkedPage]:
        """The list in id order, a page at a time, as amoCRM pages it (each page a request)."""
        page = 1
        while True:
            with self._lock:
                self._guard("GET", entity + "?created_since", page_size)
                rows = sorted((i, e) for i, e in self.entities[entity].items()
                              if (entity, i) not in self.deleted and e["created_at"] >= created_since)
            chunk = rows[(page - 1) * page_size:page * page_size]
            if not chunk:
                return
            marked = [self._marked(entity, amo_id, stored, marker_field_id) for amo_id, stored in chunk]
            newest = max(int(e["created_at"]) for _, e in chunk)
            unmarked = [self._unmarked(amo_id, stored) for (amo_id, stored), m in zip(chunk, marked)
                        if m is None and entity == "contacts"]
            yield MarkedPage([m for m in marked if m is not None], newest, unmarked)
            page += 1

    def _marked(self, entity: str, amo_id: int, stored: dict[str, Any],
                field_id: int) -> Optional[MarkedEntity]:
        values = {cf.get("field_id") or cf.get("field_code"): [str(v["value"]) for v in cf["values"]]
                  for cf in stored.get("custom_fields_values") or []}
        if not values.get(field_id):
            return None
        contacts = tuple(c for e, i, to, c in self.links if (e, i, to) == (entity, amo_id, "contacts"))
        contacts += tuple(int(c["id"]) for c in (stored.get("_embedded") or {}).get("contacts", []))
        return MarkedEntity(marker_identity(values[field_id][0]), amo_id, str(stored.get("name") or ""),
                            tuple(values.get("EMAIL", ())), tuple(values.get("PHONE", ())), contacts)

    @staticmethod
    def _unmarked(amo_id: int, stored: dict[str, Any]) -> MarkedEntity:
        values = {cf.get("field_code"): [str(v["value"]) for v in cf["values"]]
                  for cf in stored.get("custom_fields_values") or []}
        return MarkedEntity("", amo_id, str(stored.get("name") or ""), tuple(values.get("EMAIL", ())),
                            tuple(values.get("PHONE", ())))

    @_serialized
    def custom_fields(self, entity: str) -> list[dict[str, Any]]:
        self._guard("GET", entity + "/custom_fields", 0)
        return list(self.fields[entity])

    @_serialized
    def create_custom_fields(self, entity: str, fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        self._guard("POST", entity + "/custom_fields", len(fields))
        made = [dict(f, id=next(self._ids)) for f in fields]
        self.fields[entity].extend(made)
        return made

    @_serialized
    def update_custom_fields(self, entity: str, fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        self._guard("PATCH", entity + "/custom_fields", len(fields))
        by_id = {f["id"]: f for f in self.fields[entity]}
        for change in fields:
            by_id[change["id"]].update(change)
        return [by_id[change["id"]] for change in fields]

    def pipelines(self) -> list[dict[str, Any]]:
        return [{"id": 1, "name": "Main", "is_main": True,
                 "_embedded": {"statuses": [{"id": 10, "name": "First", "type": 0}]}}]

    @_serialized
    def link(self, entity: str, links: Sequence[dict[str, Any]]) -> dict[int, str]:
        self._guard("POST", entity + "/link", len(links))
        refused = {n: reason for n, link in enumerate(links) if (reason := self.reject_link(entity, link))}
        for n, link in enumerate(links):
            if n not in refused:
                self.links.append((entity, link["entity_id"], link["to_entity_type"], link["to_entity_id"]))
        return refused

    @_serialized
    def unlink(self, entity: str, links: Sequence[dict[str, Any]]) -> dict[int, str]:
        self._guard("POST", entity + "/unlink", len(links))
        for link in links:
            edge = (entity, link["entity_id"], link["to_entity_type"], link["to_entity_id"])
            while edge in self.links:
                self.links.remove(edge)
            self.unlinked.append(edge)
        return {}

    def account(self) -> dict[str, Any]:
        return {"id": 1, "name": "Fake", "subdomain": "fake"}

    def users(self) -> list[dict[str, Any]]:
        return [{"id": 7, "name": "Manager"}]

    # helpers for assertions
    def with_marker(self, entity: str, marker: str) -> list[int]:
        return [i for i, e in self.entities[entity].items() if (entity, i) not in self.deleted
                and any(marker_identity(str(v["values"][0]["value"])) == marker
                        for v in e.get("custom_fields_values") or [])]


# --------------------------------------------------------------------------- BILLmanager
@dataclass
class FakeBilling:
    clients_: dict[int, Client] = field(default_factory=dict)
    payers_: dict[int, Payer] = field(default_factory=dict)
    services_: dict[int, Service] = field(default_factory=dict)

    def clients(self, ids: Sequence[int]) -> dict[int, Client]:
        return {i: self.clients_[i] for i in ids if i in self.clients_}

    def payers(self, ids: Sequence[int]) -> dict[int, Payer]:
        return {i: self.payers_[i] for i in ids if i in self.payers_}

    def services(self, ids: Sequence[int], params: Optional[Collection[str]] = None) -> dict[int, Service]:
        found = {i: self.services_[i] for i in ids if i in self.services_}
        if params is None:
            return found
        return {i: dataclasses.replace(s, params={k: v for k, v in s.params.items() if k in params})
                for i, s in found.items()}

    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        source: dict[int, Any] = {Kind.CONTACT: self.clients_, Kind.COMPANY: self.payers_,
                                  Kind.LEAD: self.services_}[kind]
        ids = sorted(i for i, e in source.items() if i > after_id
                     and (kind is not Kind.COMPANY or e.profiletype == 2))
        for start in range(0, len(ids), batch):
            yield ids[start:start + batch]

    def account_of_user(self, user_id: int) -> Optional[int]:
        return None

    def account_by_login(self, login: str) -> Optional[int]:
        return None

    def account_by_login_or_email(self, value: str) -> Optional[int]:
        return None

    def newest_payer_of(self, account_id: int) -> Optional[int]:
        ids = [p.id for p in self.payers_.values() if p.account_id == account_id]
        return max(ids) if ids else None

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """Like BillingDb: accounts without a legal payer are absent."""
        wanted = set(account_ids)
        found: dict[int, list[int]] = {}
        for p in sorted(self.payers_.values(), key=lambda p: p.id):
            if p.account_id in wanted and p.profiletype == 2:
                found.setdefault(p.account_id, []).append(p.id)
        return found

    def services_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        wanted = set(account_ids)
        found: dict[int, list[int]] = {}
        for s in sorted(self.services_.values(), key=lambda s: s.id):
            if s.account_id in wanted:
                found.setdefault(s.account_id, []).append(s.id)
        return found

    def item_statuses(self, batch: int = 1000) -> Iterator[list[tuple[int, int]]]:
        rows = sorted((s.id, s.status) for s in self.services_.values())
        for start in range(0, len(rows), batch):
            yield rows[start:start + batch]

    def services_changed_since(self, since: datetime) -> Iterator[list[int]]:
        ids = sorted(s.id for s in self.services_.values()
                     if (s.opendate and s.opendate >= since.date())
                     or (s.expiredate and s.expiredate >= since.date()))
        if ids:
            yield ids

    def accounts_of(self, kind: Kind, ids: Sequence[int]) -> dict[int, int]:
        if kind is Kind.CONTACT:
            return {i: i for i in ids if i in self.clients_}
        source: dict[int, Any] = self.payers_ if kind is Kind.COMPANY else self.services_
        return {i: int(source[i].account_id) for i in ids if i in source}

    def names(self, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
        """Ids that do not exist are absent, as in the real reader."""
        source: dict[int, Any] = {Kind.CONTACT: self.clients_, Kind.COMPANY: self.payers_,
                                  Kind.LEAD: self.services_}[kind]
        return {i: f"{kind.value} {i}" for i in ids if i in source}


# --------------------------------------------------------------------------- rules
@dataclass
class FakeRules:
    """Conditions as predicates; payload = name (+ price for leads) and tags from a function."""

    conditions: dict[Kind, Callable[[Any], bool]] = field(default_factory=dict)
    tagger: Callable[[Kind, Any], tuple[str, ...]] = lambda kind, entity: ()
    managed: tuple[str, ...] = ()
    param_names: Optional[frozenset[str]] = None     # its conditions may read any itemparam
    # (kind, id) -> the service event the last payload was asked with
    events_asked: dict[tuple[Kind, int], Optional[ServiceEvent]] = field(default_factory=dict)

    def wants(self, kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> bool:
        return self.conditions.get(kind, lambda e: True)(entity)

    def payload(self, kind: Kind, entity: Any, ctx: MappingContext) -> AmoPayload:
        self.events_asked[(kind, entity.id)] = ctx.event
        name = getattr(entity, "name", "") or f"{getattr(entity, 'pricelist_name', '')} #{entity.id}"
        body: dict[str, Any] = {"name": name}
        if kind is Kind.LEAD:
            body["price"] = int(entity.cost)
        return AmoPayload(body, self.tagger(kind, entity), self.managed)


MARKERS = {Kind.CONTACT: 1, Kind.COMPANY: 2, Kind.LEAD: 3}


def context() -> MappingContext:
    return MappingContext(marker_field_ids=MARKERS)


def client(i: int, name: str = "") -> Client:
    return Client(id=i, name=name or f"Client {i}")


def payer(i: int, account: int, profiletype: int = 2) -> Payer:
    return Payer(id=i, account_id=account, name=f"LLC {i}", profiletype=profiletype)


def service(i: int, account: int, cost: int = 100) -> Service:
    from decimal import Decimal
    return Service(id=i, account_id=account, status=2, pricelist_id=1, pricelist_name="VPS",
                   cost=Decimal(cost))


def engine_on(billing: FakeBilling) -> tuple[Engine, FakeAmo, FakeStore, FakeRules]:
    """An engine on fresh fakes over ``billing``: no retry jitter, open creates looked up at once.
    Returns (engine, amo, store, rules)."""
    amo, store, rules = FakeAmo(), FakeStore(), FakeRules()
    engine = Engine(amo, billing, store, rules, context(), jitter=lambda: 0.0, settle_after=0)
    return engine, amo, store, rules
