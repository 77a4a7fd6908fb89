"""Strict validation of entity writes, producing the real amoCRM 400 shapes.

A write is validated completely before anything is applied, so a 400 writes
nothing. Structural problems become ``validation-errors`` items (per item
``request_id`` + ``errors[{code, path, detail}]``); business rules (status not in
pipeline, loss reason on a non-lost lead, unsorted status) become the
``errors{<id>: message}`` shape (reference §4.4, §8).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import seed
from .checks import (
    NOT_EXPECTED,
    NOT_SUPPORTED,
    ItemCheck,
    Problems,
    batch_items,
    check_users,
    is_int,
    patch_target,
    request_id_of,
    unexpected_keys,
)
from .state import State

COMMON_KEYS = {
    "name",
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "custom_fields_values",
    "tags_to_add",
    "tags_to_delete",
    "_embedded",
    "request_id",
    "id",
}
ALLOWED_KEYS = {
    "contacts": COMMON_KEYS | {"first_name", "last_name"},
    "companies": COMMON_KEYS,
    "leads": COMMON_KEYS | {"price", "status_id", "pipeline_id", "closed_at", "loss_reason_id"},
}
EMBEDDED_KEYS = {
    "contacts": {"tags"},
    "companies": {"tags"},
    "leads": {"tags", "contacts", "companies", "source"},
}
STRING_FIELDS = {"name", "first_name", "last_name"}
INT_FIELDS = {
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
    "closed_at",
    "status_id",
    "pipeline_id",
    "loss_reason_id",
    "price",
}
NULLABLE_FIELDS = {"loss_reason_id", "closed_at"}
# "price": null says "no budget": accepted, and read back as a lead with no budget reads, price 0
# (the read shape's price is an int). What real amoCRM answers to it is undocumented (README).
NO_PRICE = 0
TEXTUAL_TYPES = {
    "text",
    "textarea",
    "url",
    "streetaddress",
    "smart_address",
    "monetary",
    "org_legal_name",
    "tracking_data",
    "file",
    "payer",
    "supplier",
    "price",
}
CHOICE_TYPES = {"select", "radiobutton", "multiselect", "category"}
DATE_TYPES = {"date", "date_time", "birthday"}
FIELD_TYPES = (
    TEXTUAL_TYPES
    | CHOICE_TYPES
    | DATE_TYPES
    | {"numeric", "checkbox", "multitext", "legal_entity", "items", "linked_entity", "chained_list"}
)

# A custom-field value entry: ``field_id`` or ``field_code`` names the field. Real amoCRM also
# accepts the read shape's ``field_name``/``field_type`` beside them and ignores them (public
# clients send them and get 200; reference §5), so they are allowed and never looked at.
CF_ENTRY_KEYS = frozenset({"field_id", "field_code", "values", "field_name", "field_type"})

# Tag references: ("id", 123) or ("name", "vip").
TagRef = Tuple[str, Any]


@dataclass
class Plan:
    """One validated item, ready to apply."""

    index: int
    request_id: str
    entity_id: Optional[int] = None
    scalars: Dict[str, Any] = field(default_factory=dict)
    custom_fields: Optional[Dict[int, Optional[List[Dict[str, Any]]]]] = None
    tags_set: Optional[List[TagRef]] = None
    tags_replace: bool = False
    tags_add: List[TagRef] = field(default_factory=list)
    tags_delete: List[TagRef] = field(default_factory=list)
    contacts: List[Tuple[int, bool]] = field(default_factory=list)
    companies: List[int] = field(default_factory=list)
    source: Optional[Dict[str, Any]] = None
    skip: bool = False  # PATCH on a deleted entity in "ignore" mode


def validate_batch(state: State, entity: str, items: Any, mode: str, now: float) -> List[Plan]:
    """Validate a batch write (``mode`` is ``create`` or ``update``); raise ApiError on any problem."""
    plans: List[Plan] = []
    problems = Problems()
    for index, item in enumerate(batch_items(items)):
        plan, check = validate_item(state, entity, item, index, mode, now)
        business_key = str(plan.entity_id) if plan.entity_id is not None else None
        problems.add(plan.request_id, check, business_key)
        plans.append(plan)
    problems.raise_any()
    return plans


def validate_item(
    state: State, entity: str, item: Any, index: int, mode: str, now: float, prefix: str = ""
) -> Tuple[Plan, ItemCheck]:
    check = ItemCheck()
    plan = Plan(index=index, request_id=str(index))
    if not isinstance(item, dict):
        check.invalid_type(prefix.rstrip(".") or str(index), "object")
        return plan, check
    plan.request_id = request_id_of(item, index, check, prefix)
    unexpected_keys(item, ALLOWED_KEYS[entity], check, prefix)
    current: Optional[Dict[str, Any]] = None
    if mode == "update":
        current = _check_target(state, entity, item, plan, check, prefix)
        if plan.skip or check.errors or check.business:
            return plan, check
    for key in STRING_FIELDS & item.keys() & ALLOWED_KEYS[entity]:
        if isinstance(item[key], str):
            plan.scalars[key] = item[key]
        else:
            check.invalid_type(prefix + key, "string")
    for key in INT_FIELDS & item.keys() & ALLOWED_KEYS[entity]:
        value = item[key]
        nullable = value is None and key in NULLABLE_FIELDS
        if key == "price" and value is None:
            plan.scalars[key] = NO_PRICE
        elif is_int(value) or nullable or (key == "price" and isinstance(value, float)):
            plan.scalars[key] = value
        else:
            check.invalid_type(prefix + key, "int")
    check_users(state, plan.scalars, check, prefix)
    if current is not None:
        _check_owner_users(state, current, plan, check, prefix)
    if "custom_fields_values" in item:
        plan.custom_fields = _custom_fields(state, entity, item["custom_fields_values"], check, prefix)
    _tags(item, plan, check, prefix)
    _embedded(state, entity, item, plan, check, mode, prefix)
    if entity == "leads" and not check.errors:
        _lead_rules(state, plan, current, check, prefix)
    return plan, check


def _check_target(
    state: State, entity: str, item: Dict[str, Any], plan: Plan, check: ItemCheck, prefix: str
) -> Optional[Dict[str, Any]]:
    # Deleted in the UI (or never existed): what amoCRM answers is an open question,
    # so the answer is configurable; see state.DELETED_PATCH_MODES and the README.
    plan.entity_id, record, plan.skip = patch_target(
        item,
        state.entities[entity],
        lambda r: not r["is_deleted"],
        state.deleted_patch_mode,
        check,
        prefix,
    )
    return record


def _check_owner_users(
    state: State, current: Dict[str, Any], plan: Plan, check: ItemCheck, prefix: str
) -> None:
    """An entity owned or created by a deactivated user fails PATCH (#220, #366)."""
    if "responsible_user_id" not in plan.scalars:
        owner = current.get("responsible_user_id")
        if owner in state.users and not state.user_active(owner):
            check.add(NOT_SUPPORTED, prefix + "responsible_user_id")
    creator = current.get("created_by")
    if "created_by" not in plan.scalars and creator in state.users and not state.user_active(creator):
        check.add(NOT_SUPPORTED, prefix + "created_by")


def _custom_fields(
    state: State, entity: str, values: Any, check: ItemCheck, prefix: str
) -> Optional[Dict[int, Optional[List[Dict[str, Any]]]]]:
    if values is None:
        return None
    if not isinstance(values, list):
        check.invalid_type(prefix + "custom_fields_values", "array")
        return None
    result: Dict[int, Optional[List[Dict[str, Any]]]] = {}
    for n, entry in enumerate(values):
        path = f"{prefix}custom_fields_values.{n}"
        if not isinstance(entry, dict):
            check.invalid_type(path, "object")
            continue
        for key in entry:
            if key not in CF_ENTRY_KEYS:
                check.add(NOT_EXPECTED, f"{path}.{key}")
        cfield = _resolve_field(state, entity, entry, check, path)
        if cfield is None:
            continue
        raw = entry.get("values")
        if raw is None:
            result[cfield["id"]] = None
            continue
        if not isinstance(raw, list):
            check.invalid_type(f"{path}.values", "array")
            continue
        normalized = []
        for m, value in enumerate(raw):
            one = _field_value(cfield, value, check, f"{path}.values.{m}")
            if one is not None:
                normalized.append(one)
        if cfield["type"] in ("select", "radiobutton") and len(normalized) > 1:
            check.add(NOT_SUPPORTED, f"{path}.values.1.value")
        result[cfield["id"]] = normalized or None
    return result


def _resolve_field(
    state: State, entity: str, entry: Dict[str, Any], check: ItemCheck, path: str
) -> Optional[Dict[str, Any]]:
    if "field_id" in entry:
        fid = entry["field_id"]
        if not is_int(fid):
            check.invalid_type(f"{path}.field_id", "int")
            return None
        cfield = state.custom_fields[entity].get(fid)
        if cfield is None:
            check.add(NOT_SUPPORTED, f"{path}.field_id")
        return cfield
    code = entry.get("field_code")
    if not isinstance(code, str):
        check.add(NOT_SUPPORTED, f"{path}.field_id")
        return None
    cfield = state.field_by_code(entity, code)
    if cfield is None:
        check.add(NOT_SUPPORTED, f"{path}.field_code")
    return cfield


def _field_value(cfield: Dict[str, Any], value: Any, check: ItemCheck, path: str) -> Optional[Dict[str, Any]]:
    if not isinstance(value, dict):
        check.invalid_type(path, "object")
        return None
    ftype = cfield["type"]
    enum_capable = ftype in CHOICE_TYPES or ftype == "multitext"
    allowed = {"value", "enum_id", "enum_code"} if enum_capable else {"value"}
    before = len(check.errors)
    for key in value:
        if key not in allowed:
            check.add(NOT_EXPECTED, f"{path}.{key}")
    if len(check.errors) > before:
        return None
    raw = value.get("value")
    if enum_capable:
        return _enum_value(cfield, value, check, path)
    if ftype in TEXTUAL_TYPES:
        if isinstance(raw, str) or (isinstance(raw, (int, float)) and not isinstance(raw, bool)):
            return {"value": str(raw)}
        check.invalid_type(f"{path}.value", "string")
        return None
    if ftype == "numeric":
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return {"value": str(raw)}
        if isinstance(raw, str):
            try:
                float(raw)
            except ValueError:
                pass
            else:
                return {"value": raw}
        check.invalid_type(f"{path}.value", "numeric")
        return None
    if ftype == "checkbox":
        if isinstance(raw, bool):
            return {"value": raw}
        check.invalid_type(f"{path}.value", "bool")
        return None
    if ftype in DATE_TYPES:
        stamp = _timestamp(raw)
        if stamp is None:
            check.invalid_type(f"{path}.value", "int")
            return None
        return {"value": stamp}
    if ftype == "legal_entity":
        if not isinstance(raw, dict):
            check.invalid_type(f"{path}.value", "object")
            return None
        for key in raw:
            if key not in seed.LEGAL_ENTITY_KEYS:
                check.add(NOT_EXPECTED, f"{path}.value.{key}")
        return {"value": raw}
    return {"value": raw}


def _enum_value(
    cfield: Dict[str, Any], value: Dict[str, Any], check: ItemCheck, path: str
) -> Optional[Dict[str, Any]]:
    enums = cfield["enums"] or []
    chosen: Optional[Dict[str, Any]] = None
    if "enum_id" in value:
        chosen = next((e for e in enums if e["id"] == value["enum_id"]), None)
        if chosen is None:
            check.add(NOT_SUPPORTED, f"{path}.enum_id")
            return None
    elif "enum_code" in value:
        chosen = next((e for e in enums if e["code"] is not None and e["code"] == value["enum_code"]), None)
        if chosen is None:
            check.add(NOT_SUPPORTED, f"{path}.enum_code")
            return None
    if cfield["type"] == "multitext":
        raw = value.get("value")
        if not isinstance(raw, str):
            check.invalid_type(f"{path}.value", "string")
            return None
        if chosen is None:
            check.add(NOT_SUPPORTED, f"{path}.enum_code")
            return None
        return {"value": raw, "enum_id": chosen["id"], "enum_code": chosen["code"]}
    if chosen is None:
        chosen = next((e for e in enums if e["value"] == value.get("value")), None)
        if chosen is None:
            check.add(NOT_SUPPORTED, f"{path}.value")
            return None
    return {"value": chosen["value"], "enum_id": chosen["id"], "enum_code": chosen["code"]}


def _timestamp(raw: Any) -> Optional[int]:
    if is_int(raw):
        return int(raw)
    if isinstance(raw, str):
        try:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return int(parsed.timestamp())
    return None


def _tag_refs(raw: Any, check: ItemCheck, path: str) -> List[TagRef]:
    if not isinstance(raw, list):
        check.invalid_type(path, "array")
        return []
    refs: List[TagRef] = []
    for n, tag in enumerate(raw):
        if not isinstance(tag, dict):
            check.invalid_type(f"{path}.{n}", "object")
        elif is_int(tag.get("id")):
            refs.append(("id", tag["id"]))
        elif isinstance(tag.get("name"), str) and tag["name"].strip():
            refs.append(("name", tag["name"].strip()))
        else:
            check.add(NOT_SUPPORTED, f"{path}.{n}.name")
    return refs


def _tags(item: Dict[str, Any], plan: Plan, check: ItemCheck, prefix: str) -> None:
    for key, target in (("tags_to_add", plan.tags_add), ("tags_to_delete", plan.tags_delete)):
        if key in item and item[key] is not None:
            target.extend(_tag_refs(item[key], check, prefix + key))


def _embedded(
    state: State, entity: str, item: Dict[str, Any], plan: Plan, check: ItemCheck, mode: str, prefix: str
) -> None:
    embedded = item.get("_embedded")
    if embedded is None:
        return
    if not isinstance(embedded, dict):
        check.invalid_type(prefix + "_embedded", "object")
        return
    allowed = set(EMBEDDED_KEYS[entity])
    if mode == "update":
        allowed -= {"contacts", "companies", "source"}  # create only (SDK sends them only for new leads)
    for key in embedded:
        if key not in allowed:
            check.add(NOT_EXPECTED, f"{prefix}_embedded.{key}")
    if "tags" in embedded:
        plan.tags_replace = True
        if embedded["tags"] is not None:
            plan.tags_set = _tag_refs(embedded["tags"], check, prefix + "_embedded.tags")
    if "contacts" in allowed and embedded.get("contacts") is not None:
        _embedded_ids(state, "contacts", embedded["contacts"], plan, check, prefix)
    if "companies" in allowed and embedded.get("companies") is not None:
        _embedded_ids(state, "companies", embedded["companies"], plan, check, prefix)
    if "source" in allowed and embedded.get("source") is not None:
        if isinstance(embedded["source"], dict):
            plan.source = embedded["source"]
        else:
            check.invalid_type(prefix + "_embedded.source", "object")


def _embedded_ids(state: State, target: str, raw: Any, plan: Plan, check: ItemCheck, prefix: str) -> None:
    path = f"{prefix}_embedded.{target}"
    if not isinstance(raw, list):
        check.invalid_type(path, "array")
        return
    for n, ref in enumerate(raw):
        if not isinstance(ref, dict) or not is_int(ref.get("id")):
            check.add(NOT_SUPPORTED, f"{path}.{n}.id")
            continue
        if state.live(target, ref["id"]) is None:
            check.add(NOT_SUPPORTED, f"{path}.{n}.id")
            continue
        if target == "contacts":
            plan.contacts.append((ref["id"], bool(ref.get("is_main", False))))
        else:
            plan.companies.append(ref["id"])


def _lead_rules(
    state: State, plan: Plan, current: Optional[Dict[str, Any]], check: ItemCheck, prefix: str
) -> None:
    """Resolve pipeline/status and check the business rules of §7."""
    scalars = plan.scalars
    pipeline_id = scalars.get("pipeline_id")
    status_id = scalars.get("status_id")
    if pipeline_id is not None and pipeline_id not in state.pipelines:
        check.add(NOT_SUPPORTED, prefix + "pipeline_id")
        return
    if status_id is not None:
        if pipeline_id is None:
            if current is not None:
                pipeline_id = current["pipeline_id"]
            elif status_id in (seed.WON_STATUS_ID, seed.LOST_STATUS_ID):
                pipeline_id = state.main_pipeline()["id"]
            else:
                pipeline_id = next(
                    (p["id"] for p in state.pipelines.values() if state.status(p["id"], status_id)), None
                )
                if pipeline_id is None:
                    check.add(NOT_SUPPORTED, prefix + "status_id")
                    return
        status = state.status(pipeline_id, status_id)
        if status is None:
            check.business = f"Status {status_id} does not belong to pipeline {pipeline_id}"
            return
        if status["type"] == 1:
            check.business = "Unsorted status can not be set via leads API"
            return
    elif pipeline_id is not None:
        if current is None or current["pipeline_id"] != pipeline_id:
            status_id = State.first_working_status(state.pipelines[pipeline_id])
    elif current is None:
        main = state.main_pipeline()
        pipeline_id, status_id = main["id"], State.first_working_status(main)
    if pipeline_id is not None:
        scalars["pipeline_id"] = pipeline_id
    if status_id is not None:
        scalars["status_id"] = status_id
    final_status = status_id if status_id is not None else (current or {}).get("status_id")
    loss = scalars.get("loss_reason_id")
    if loss is not None:
        if loss not in state.loss_reasons:
            check.add(NOT_SUPPORTED, prefix + "loss_reason_id")
        elif final_status != seed.LOST_STATUS_ID:
            check.business = "Loss reason can be specified only for lost lead"
