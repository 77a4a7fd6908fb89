"""Pure sync decisions: queue work + current snapshots + links + rules -> a plan.

No I/O here. The engine gathers the inputs (one bulk read per kind), calls
:func:`plan_batch` and applies the actions it returns. Everything the planner
decides is visible in the :class:`Plan`, so tests read it like a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence

from ..domain import Kind, Payer, Service, ServiceEvent
from ..markers import marker_value
from ..ports import AmoPayload, MappingContext, QueueItem, RuleSet
from ..unverified import PROFILE_TYPE_LEGAL
from .events import event_of, implied_event, new_events, service_event
from .payers import Departure, Payers, Unlink, main_companies_only, plan_departure, plan_unlink

__all__ = ["Create", "Defer", "Inputs", "Link", "Plan", "Skip", "Update", "Work", "event_of", "new_events",
           "plan_batch", "service_event"]

# Skip reasons, shown in the log and returned to the CLI/panel.
SKIP_GONE = "not found in BILLmanager (deleted)"
SKIP_NOT_LEGAL = "payer is not a legal entity (profiletype {profiletype}), not a company"
SKIP_CONDITIONS = "sync conditions do not hold"


@dataclass(frozen=True)
class Work:
    """One entity to sync: a claimed queue row, or a direct unit of the initial export."""

    kind: Kind
    billmgr_id: int
    reason: str = "edit"
    item: Optional[QueueItem] = None

    @classmethod
    def of(cls, item: QueueItem) -> Work:
        return cls(item.kind, item.billmgr_id, item.reason, item)


@dataclass(frozen=True)
class Create:
    work: Work
    payload: AmoPayload
    # set when an earlier create may have reached amoCRM: look the marker up first
    intent_at: Optional[datetime] = None


@dataclass(frozen=True)
class Update:
    work: Work
    amocrm_id: int
    payload: AmoPayload


@dataclass(frozen=True)
class Skip:
    work: Work
    reason: str


@dataclass(frozen=True)
class Defer:
    """Wait for a parent (the client's contact) to be linked first."""

    work: Work
    needs: tuple[tuple[Kind, int], ...]


@dataclass(frozen=True)
class Link:
    """``entity_id`` of ``kind`` must be linked to ``to_entity_id`` of ``to_entity``."""

    kind: Kind
    billmgr_id: int
    to_entity: str
    to_entity_id: int
    is_main: bool = False


@dataclass
class Plan:
    kind: Kind
    creates: list[Create] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)
    defers: list[Defer] = field(default_factory=list)
    # parent links per billmgr id; applied on create (leads: _embedded) or via /link
    parents: dict[int, list[Link]] = field(default_factory=dict)
    # companies of former legal payers, to unlink from the client's contact and leads
    unlinks: list[Unlink] = field(default_factory=list)
    # companies of payers deleted in BILLmanager, to unlink likewise and forget
    departures: list[Departure] = field(default_factory=list)
    # rows queued when the batch is applied: rechecks (only where no row waits) and edits
    rechecks: list[tuple[Kind, int]] = field(default_factory=list)
    requeues: list[tuple[Kind, int]] = field(default_factory=list)
    # leads created with the event their status gives (suspended, deleted) and none of their
    # own: recorded as their last event, so the reconciler does not tell it again
    implied_events: list[tuple[int, ServiceEvent]] = field(default_factory=list)


@dataclass(frozen=True)
class Inputs:
    """What the engine read for one batch of one kind."""

    kind: Kind
    snapshots: Mapping[int, Any]
    links: Mapping[int, int]
    open_creates: Mapping[int, datetime] = field(default_factory=dict)
    contact_links: Mapping[int, int] = field(default_factory=dict)   # account id -> contact id
    company_of_account: Mapping[int, int] = field(default_factory=dict)  # account id -> company id
    # contacts that will never come (conditions exclude the client): do not wait for them
    contacts_not_coming: frozenset[int] = frozenset()
    # item id -> its last service event (store.service_events): what a row without one is planned with
    events: Mapping[int, ServiceEvent] = field(default_factory=dict)
    # companies: the clients' legal payers, their companies and linked leads (the main company rule)
    payers: Payers = field(default_factory=Payers)


def request_id(kind: Kind, billmgr_id: int) -> str:
    return f"{kind.value}-{billmgr_id}"


def dedupe(works: Sequence[Work]) -> list[Work]:
    """One unit per entity (the queue coalesces; this guards direct callers)."""
    seen: dict[int, Work] = {}
    for work in works:
        seen.setdefault(work.billmgr_id, work)
    return list(seen.values())


def account_of(kind: Kind, entity: Any) -> Optional[int]:
    if kind is Kind.CONTACT:
        return None
    return int(entity.account_id)


def plan_batch(works: Sequence[Work], inputs: Inputs, rules: RuleSet, ctx: MappingContext) -> Plan:
    """Decide create/update/skip/defer for each unit of one kind."""
    kind = inputs.kind
    plan = Plan(kind)
    for work in dedupe(works):
        entity = inputs.snapshots.get(work.billmgr_id)
        event = event_of(kind, work, inputs)
        skip = _skip_reason(kind, entity, event, rules)
        if skip:
            if not (plan_unlink(plan, work, entity, inputs) or plan_departure(plan, work, entity, inputs)):
                plan.skips.append(Skip(work, skip))
            continue
        parents = _parents(kind, entity, inputs)
        account_id = account_of(kind, entity)
        if (account_id is not None and account_id not in inputs.contact_links
                and account_id not in inputs.contacts_not_coming):
            plan.defers.append(Defer(work, ((Kind.CONTACT, account_id),)))
            continue
        payload = rules.payload(kind, entity, _with_event(ctx, event))
        payload = _with_marker(kind, work.billmgr_id, payload, ctx)
        if parents:
            plan.parents[work.billmgr_id] = parents
        amocrm_id = inputs.links.get(work.billmgr_id)
        if amocrm_id is not None:
            plan.updates.append(Update(work, amocrm_id, payload))
        else:
            plan.creates.append(Create(work, payload, inputs.open_creates.get(work.billmgr_id)))
            implied = implied_event(kind, work, inputs)
            if implied is not None:
                plan.implied_events.append((work.billmgr_id, implied))
    if kind is Kind.COMPANY:
        main_companies_only(plan, inputs)
    return plan


def _skip_reason(kind: Kind, entity: Any, event: Optional[ServiceEvent], rules: RuleSet) -> Optional[str]:
    if entity is None:
        return SKIP_GONE
    if kind is Kind.COMPANY and isinstance(entity, Payer) and entity.profiletype != PROFILE_TYPE_LEGAL:
        return SKIP_NOT_LEGAL.format(profiletype=entity.profiletype)
    if not rules.wants(kind, entity, event):
        return SKIP_CONDITIONS
    return None


def _parents(kind: Kind, entity: Any, inputs: Inputs) -> list[Link]:
    if kind is Kind.CONTACT:
        return []
    links: list[Link] = []
    contact = inputs.contact_links.get(entity.account_id)
    if contact is not None:
        links.append(Link(kind, entity.id, "contacts", contact, is_main=kind is Kind.LEAD))
    if kind is Kind.LEAD and isinstance(entity, Service):
        company = inputs.company_of_account.get(entity.account_id)
        if company is not None:
            links.append(Link(kind, entity.id, "companies", company))
    return links


def _with_event(ctx: MappingContext, event: Optional[ServiceEvent]) -> MappingContext:
    if event is None or ctx.event == event:
        return ctx
    return replace(ctx, event=event)


def _with_marker(kind: Kind, billmgr_id: int, payload: AmoPayload, ctx: MappingContext) -> AmoPayload:
    """Make sure the marker field carries our key, whatever the rules produced."""
    field_id = ctx.marker_field_ids.get(kind)
    if field_id is None:
        return payload
    values = [v for v in payload.body.get("custom_fields_values") or [] if v.get("field_id") != field_id]
    values.append({"field_id": field_id, "values": [{"value": marker_value(kind, billmgr_id)}]})
    body = dict(payload.body)
    body["custom_fields_values"] = values
    return AmoPayload(body, payload.tags, payload.managed_tags, payload.placement)


def moves(kind: Kind, work: Work) -> bool:
    """An update places a lead in its pipeline and status only with a service event.

    A recheck, a resync, an export of a linked lead or an edit without an event never
    does: a manager's move stands until the next event the rules react to."""
    return kind is Kind.LEAD and service_event(work.reason) is not None


def _placed(body: dict[str, Any], placement: Optional[tuple[int, int]]) -> None:
    if placement is not None:
        body["pipeline_id"], body["status_id"] = placement


def without_clearings(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body with nothing to clear: a new entity has no old value (a create need not send them)."""
    out = {k: v for k, v in body.items() if v is not None and not (isinstance(v, str) and v == "")}
    if "custom_fields_values" in out:
        fields = [f for f in out["custom_fields_values"] if f.get("values") is not None]
        if fields:
            out["custom_fields_values"] = fields
        else:
            del out["custom_fields_values"]
    return out


def create_body(kind: Kind, create: Create, parents: Sequence[Link]) -> dict[str, Any]:
    """POST item: owned fields that have a value, rule tags, request_id, the lead's pipeline
    and status; leads embed their contact and company."""
    body = without_clearings(create.payload.body)
    _placed(body, create.payload.placement)
    body["request_id"] = request_id(kind, create.work.billmgr_id)
    if create.payload.tags:
        body["tags_to_add"] = [{"name": t} for t in create.payload.tags]
    if kind is Kind.LEAD and parents:
        embedded: dict[str, Any] = dict(body.get("_embedded") or {})
        contacts = [{"id": p.to_entity_id, "is_main": p.is_main}
                    for p in parents if p.to_entity == "contacts"]
        companies = [{"id": p.to_entity_id} for p in parents if p.to_entity == "companies"]
        if contacts:
            embedded["contacts"] = contacts
        if companies:
            embedded["companies"] = companies
        body["_embedded"] = embedded
    return body


# Set when the module creates an entity, then the sales team's: a manager who hands a client
# to a colleague must not see it handed back by the next edit in billing.
CREATE_ONLY = frozenset({"_embedded", "responsible_user_id"})


def update_body(kind: Kind, update: Update, *, hand_over: bool = False) -> dict[str, Any]:
    """PATCH item: every owned field, cleared ones included; tags added/removed incrementally,
    hand-made tags stay; pipeline and status only with a service event (:func:`moves`); the
    responsible user never (:data:`CREATE_ONLY`), but when amoCRM refused the entity for its
    deactivated owner (``hand_over``: the module's responsible user takes it over)."""
    body = {k: v for k, v in update.payload.body.items()
            if k not in CREATE_ONLY or (hand_over and k == "responsible_user_id")}
    if moves(kind, update.work):
        _placed(body, update.payload.placement)
    body["id"] = update.amocrm_id
    body["request_id"] = request_id(kind, update.work.billmgr_id)
    wanted = set(update.payload.tags)
    if wanted:
        body["tags_to_add"] = [{"name": t} for t in update.payload.tags]
    stale = [t for t in update.payload.managed_tags if t not in wanted]
    if stale:
        body["tags_to_delete"] = [{"name": t} for t in stale]
    return body


def links_after_write(kind: Kind, parents: Sequence[Link], created: bool) -> list[Link]:
    """Which parent links need a /link call: all of a company's; a lead's only after an update."""
    if kind is Kind.COMPANY:
        return list(parents)
    if kind is Kind.LEAD and not created:
        return list(parents)
    return []
