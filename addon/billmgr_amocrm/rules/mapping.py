"""``RuleSet``: amocrm.conf + presets -> sync decisions and amoCRM payloads (pure).

Implements ``ports.RuleSet``. Built once per worker run: every condition is
compiled here, so evaluation per entity is cheap and cannot fail on config.

Payload bodies carry only fields the module owns (reference §4.7): never
``created_by``/``updated_by``/``_embedded.tags``; tags travel in
``AmoPayload.tags``/``managed_tags`` and the worker turns them into
``tags_to_add``/``tags_to_delete``. Links between entities are the worker's job.

A body is the whole of what the module maps, absences included: every custom field a
rule of the kind names is in it, with its value or, when the rules give nothing now
(an empty or unusable value, no rule's conditions hold), with ``"values": None``,
amoCRM's clearing (reference §5); so are PHONE and EMAIL of contacts and companies, a
contact's first and last name (``""`` when there is none) and a lead's price (None
when the service has no cost). Fields no rule names are never in it, so amoCRM keeps
what people put there. A lead's pipeline and status travel apart, in
``AmoPayload.placement``: the worker sends them only on a create and with a service
event.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Collection, Dict, FrozenSet, List, Optional, Tuple

from .. import ports
from ..domain import Kind, ServiceEvent
from ..markers import marker_value
from ..ports import AmoPayload, JsonDict, MappingContext
from ..unverified import PROFILE_TYPE_LEGAL
from .attributes import PARAM_PREFIX, attribute, attributes_of
from .backlinks import link_field
from .conditions import Compiled, all_hold
from .config import Condition, FieldRule, ModuleConfig, PipelineRule
from .config_check import validated
from .contacts import normalize_emails, normalize_phones, unique
from .fieldvalues import field_values
from .presets import Presets, ValueDef
from .text import NAME_LIMIT, clean_text, shorten

MAX_PRICE = 2_147_483_647       # amoCRM stores price as a signed 32-bit int
MAX_MULTITEXT_VALUES = 10       # phones/emails per entity; more is noise, not data
NAME_PARAMS = ("domain", "hostname", "ip")  # itemparams that identify a service to a human
_PATRONYMIC_ENDINGS = ("вич", "вна", "ична", "инична", "оглы", "кызы")

# clean_text walks every character; tariff and type names repeat across thousands of services
# (an export maps each of them once per entity), so their cleaned form is remembered.
_clean = lru_cache(maxsize=4096)(clean_text)


@dataclass(frozen=True)
class _FieldPlan:
    rule: FieldRule
    value: ValueDef
    conditions: Tuple[Compiled, ...]


@dataclass(frozen=True)
class _PipelinePlan:
    rule: PipelineRule
    conditions: Tuple[Compiled, ...]


def split_person_name(full: str) -> Tuple[str, str]:
    """(first_name, last_name): "Иван Петров" and the Russian order "Петров Иван Иванович"."""
    words = full.split()
    if not words:
        return "", ""
    if len(words) == 1:
        return words[0], ""
    if len(words) == 3 and words[2].casefold().endswith(_PATRONYMIC_ENDINGS):
        return words[1], words[0]
    return words[0], " ".join(words[1:])


def lead_price(cost: Any) -> Optional[int]:
    """amoCRM's price (budget) for a service's cost; None when there is no cost to show
    (NULL in BILLmanager, or not a number): 0 would say the service is free."""
    if not isinstance(cost, Decimal) or not cost.is_finite():
        return None
    if cost >= MAX_PRICE:   # clamp first: quantize overflows the context precision on huge values
        return MAX_PRICE
    if cost <= 0:
        return 0
    return int(cost.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def lead_name(attrs: Dict[str, Any]) -> str:
    """The service's own name (``item.name``) when BILLmanager filled it, else "Виртуальный
    сервер VDS-2 — example.com": type, tariff, what it serves; then our id ("(#1234)")."""
    tail = f" (#{attrs['id']})" if attrs.get("id") is not None else ""
    own = clean_text(str(attrs.get("name") or ""))   # unique per service: not worth the cache
    if own:
        return shorten(own, tail, NAME_LIMIT)
    type_name = _clean(attrs.get("type_name") or "")
    pricelist = _clean(attrs.get("pricelist") or "")
    parts = [type_name] if type_name else []
    if pricelist and pricelist.casefold() not in type_name.casefold():
        parts = [p for p in parts if p.casefold() not in pricelist.casefold()] + [pricelist]
    head = " ".join(parts) or _clean(attrs.get("type") or "") or "Услуга"
    target = ""
    for param in NAME_PARAMS:
        target = clean_text(str(attribute(attrs, "param." + param) or ""))   # unique per service
        if target:
            break
    if target:
        head = f"{head} — {target}"
    return shorten(head, tail, NAME_LIMIT)


def param_names_read(presets: Presets) -> FrozenSet[str]:
    """Every itemparam the rules can read, so the export fetches only those.

    A validated configuration names only preset values (conditions and field rules
    alike), and a preset value reads one path; the service name reads NAME_PARAMS.
    """
    names = set(NAME_PARAMS)
    for value in presets.values.values():
        if value.path.startswith(PARAM_PREFIX):
            names.add(value.path[len(PARAM_PREFIX):])
    return frozenset(names)


def _multitext(code: str, values: List[str]) -> JsonDict:
    """PHONE or EMAIL: the values, or amoCRM's clearing when there are none."""
    if not values:
        return {"field_code": code, "values": None}
    return {"field_code": code,
            "values": [{"value": v, "enum_code": "WORK"} for v in values[:MAX_MULTITEXT_VALUES]]}


class RuleSet:
    """The configured rules, compiled; implements ``ports.RuleSet``."""

    def __init__(self, config: ModuleConfig, presets: Presets) -> None:
        validated(config, presets)
        self.config = config
        self.presets = presets
        self._sync = {kind: self._compile(config.conditions.of(kind)) for kind in Kind}
        self._tags: Dict[Kind, List[Tuple[str, Tuple[Compiled, ...]]]] = {kind: [] for kind in Kind}
        for tag in config.tags:
            self._tags[Kind(tag.entity)].append((clean_text(tag.tag), self._compile(tag.conditions)))
        self._fields: Dict[Kind, List[_FieldPlan]] = {kind: [] for kind in Kind}
        for rule in config.fields:
            self._fields[Kind(rule.entity)].append(
                _FieldPlan(rule, presets.value(rule.value), self._compile(rule.conditions)))
        self._pipelines = [_PipelinePlan(r, self._compile(r.conditions)) for r in config.pipelines]
        self.param_names: Optional[FrozenSet[str]] = param_names_read(presets)
        # The planner asks wants() then payload() for the same snapshot: its attributes are
        # computed once. Snapshots are frozen, and the slot holds the entity itself, so an
        # identity match cannot be a recycled id().
        self._last_attrs: Optional[Tuple[Kind, Any, Optional[ServiceEvent], Dict[str, Any]]] = None

    def _attributes(self, kind: Kind, entity: Any, event: Optional[ServiceEvent]) -> Dict[str, Any]:
        last = self._last_attrs
        if last is not None and last[1] is entity and last[0] is kind and last[2] == event:
            return last[3]
        attrs = attributes_of(kind, entity, event)
        self._last_attrs = (kind, entity, event, attrs)
        return attrs

    def _compile(self, conditions: Tuple[Condition, ...]) -> Tuple[Compiled, ...]:
        return tuple(self.presets.compile(c.value, c.validator, c.argument) for c in conditions)

    # ------------------------------------------------------------------ ports.RuleSet
    def wants(self, kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> bool:
        """The sync conditions hold; a company must be a legal-entity payer."""
        if kind is Kind.COMPANY and getattr(entity, "profiletype", None) != PROFILE_TYPE_LEGAL:
            return False
        return all_hold(self._sync[kind], self._attributes(kind, entity, event))

    def payload(self, kind: Kind, entity: Any, ctx: MappingContext) -> AmoPayload:
        attrs = self._attributes(kind, entity, ctx.event)
        body: JsonDict = {}
        placement: Optional[Tuple[int, int]] = None
        if kind is Kind.CONTACT:
            body.update(self._contact_head(entity, attrs))
        elif kind is Kind.COMPANY:
            body.update(self._company_head(attrs))
        else:
            body.update(self._lead_head(attrs))
            rule = self.pipeline_for(attrs, ctx.gone_placements)
            if rule is not None:
                placement = (rule.pipeline_id, rule.status_id)
        responsible = ctx.default_responsible_user_id or self.config.sync.responsible_user_id
        if responsible:
            body["responsible_user_id"] = responsible
        fields = self._custom_fields(kind, entity, attrs, ctx)
        if fields:
            body["custom_fields_values"] = fields
        tags = unique(name for name, conds in self._tags[kind] if all_hold(conds, attrs))
        managed = unique([*self.managed_tags(kind), *ctx.retired_tags.get(kind, ())])
        return AmoPayload(body=body, tags=tuple(tags), managed_tags=tuple(managed), placement=placement)

    def managed_tags(self, kind: Kind) -> tuple[str, ...]:
        """Every tag a rule could put on this kind: the worker takes off those it does not give."""
        return tuple(unique(name for name, _ in self._tags[kind]))

    def pipeline_for(self, attrs: Dict[str, Any],
                     gone: Collection[Tuple[int, int]] = ()) -> Optional[PipelineRule]:
        """The first pipeline rule whose conditions hold and whose stage amoCRM still has
        (``gone``: the pairs it no longer has), or None for amoCRM's default."""
        return next((p.rule for p in self._pipelines if (p.rule.pipeline_id, p.rule.status_id) not in gone
                     and all_hold(p.conditions, attrs)), None)

    # ------------------------------------------------------------------ heads
    def _contact_head(self, client: Any, attrs: Dict[str, Any]) -> JsonDict:
        person = clean_text(attrs["realname"])
        name = person or clean_text(attrs["name"]) or clean_text(attrs["login"]) \
            or f"Клиент #{attrs['id']}"
        first, last = split_person_name(person)
        # "" clears a name the client no longer has; a create leaves it out
        return {"name": name, "first_name": first, "last_name": last}

    def _company_head(self, attrs: Dict[str, Any]) -> JsonDict:
        name = clean_text(attrs["name"]) or clean_text(attrs["person"]) or f"Плательщик #{attrs['id']}"
        return {"name": name}

    def _lead_head(self, attrs: Dict[str, Any]) -> JsonDict:
        return {"name": lead_name(attrs), "price": lead_price(attrs["cost"])}

    # ------------------------------------------------------------------ custom fields
    def _phones_emails(self, kind: Kind, entity: Any, attrs: Dict[str, Any]) -> List[JsonDict]:
        """PHONE and EMAIL of a contact (all its enabled users) or a company, always both."""
        if kind is Kind.LEAD:
            return []
        country = str(attrs.get("country") or "")
        if kind is Kind.COMPANY:
            phones_raw, emails_raw = [attrs["phone"]], [attrs["email"]]
        else:
            users = _contact_users(entity)
            phones_raw = [attrs["phone"], *(_text_attr(u, "phone") for u in users)]
            emails_raw = [attrs["email"], *(_text_attr(u, "email") for u in users)]
        phones = unique(p for raw in phones_raw for p in normalize_phones(raw, country))
        emails = unique(e for raw in emails_raw for e in normalize_emails(raw))
        return [_multitext("PHONE", phones), _multitext("EMAIL", emails)]

    def _custom_fields(self, kind: Kind, entity: Any, attrs: Dict[str, Any],
                       ctx: MappingContext) -> List[JsonDict]:
        fields = self._phones_emails(kind, entity, attrs)
        marker_id = ctx.marker_field_ids.get(kind) or self.config.sync.marker_field_ids.as_map().get(kind)
        lang = self.config.sync.language
        # every field a rule names, in the order the rules first name them; None clears it
        chosen: Dict[int, Optional[List[Any]]] = {}
        for plan in self._fields[kind]:
            field_id = plan.rule.field_id
            if field_id == marker_id or field_id in ctx.gone_field_ids:
                continue
            chosen.setdefault(field_id, None)
            if chosen[field_id] is not None or not all_hold(plan.conditions, attrs):
                continue  # the first matching rule with a value wins
            chosen[field_id] = field_values(plan.rule.field_type, attribute(attrs, plan.value.path),
                                            plan.value, plan.rule.enum_map, lang)
        fields.extend({"field_id": field_id, "values": values} for field_id, values in chosen.items())
        url_id = ctx.url_field_ids.get(kind) or self.config.sync.url_field_ids.as_map().get(kind)
        if url_id and url_id not in chosen and url_id != marker_id:   # a rule naming the field wins
            link = link_field(url_id, self.config.sync.billmgr_url, kind, attrs.get("id"))
            if link is not None:
                fields.append(link)
        if marker_id and attrs.get("id") is not None:
            fields.append({"field_id": marker_id, "values": [{"value": marker_value(kind, attrs["id"])}]})
        return fields


def _contact_users(client: Any) -> List[Any]:
    """Enabled users of the account (all of them if none is enabled), main user first."""
    users = getattr(client, "users", ()) or ()
    if not isinstance(users, (list, tuple)):
        return []
    enabled = [u for u in users if getattr(u, "enabled", True)]
    return enabled or list(users)


def _text_attr(obj: Any, name: str) -> str:
    value = getattr(obj, name, "")
    return value if isinstance(value, str) else ""


if TYPE_CHECKING:
    def _implements_port(rules: RuleSet) -> ports.RuleSet:  # mypy proves the Protocol is met
        return rules
