"""Add/edit forms of the rule sections that pick from amoCRM's catalog: custom fields and pipelines.

The field, its options, the pipeline and its statuses come from ``service.catalog`` (see
``catalog``); the conditions and the saving are shared with the other rule forms
(``ruleforms``).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from . import backend
from . import catalog as amo_catalog
from .i18n import t
from .protocol import PanelRequest
from .responses import Options, Reply, form, ok
from .ruleforms import SLOTS, changed_fields, existing_rule, new_rule_title, store_rule, submitted
from .ruleinputs import (
    KINDS,
    condition_slists,
    condition_values,
    conditions_from_form,
    kind_options,
    unknown_choice,
    value_options,
)

SELECT_TYPES = ("select", "radiobutton", "multiselect")


# --------------------------------------------------------------------------- custom fields
def parse_enum_map(request: PanelRequest, text: str, field: amo_catalog.AmoField) -> Dict[str, int]:
    """``billmgr value = amoCRM option`` lines -> {value: enum id}; the option by text or id."""
    by_text = {name.casefold(): enum_id for enum_id, name in field.options}
    ids = {enum_id for enum_id, _ in field.options}
    mapping: Dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        left, sep, right = line.partition("=")
        key, option = left.strip(), right.strip()
        if not sep or not key or not option:
            raise unknown_choice(request, "enum_map", line.strip())
        if option.isdigit() and int(option) in ids:
            mapping[key] = int(option)
        elif option.casefold() in by_text:
            mapping[key] = by_text[option.casefold()]
        else:
            raise unknown_choice(request, "enum_map", option)
    return mapping


def _enum_text(mapping: Mapping[str, Any], field: amo_catalog.AmoField | None) -> str:
    names = dict(field.options) if field else {}
    return "\n".join(f"{k} = {names.get(v, v) if isinstance(v, int) else v}" for k, v in mapping.items())


def field_options(cat: amo_catalog.Catalog, kind: str, marker: int | None, lang: str) -> Options:
    head = [("", t("choose", lang))]
    return head + [
        (str(f.id), f"{f.name} ({f.type}, {f.id})")
        for f in cat.fields.get(kind, ())
        if f.id != marker and f.type != "multitext"
    ]


def fields_edit(request: PanelRequest) -> Reply:
    config, presets, read = backend.load_for_edit(request.lang)
    version = backend.opened_version(request, read)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = existing_rule(request, data, "fields")
    cat = amo_catalog.load(lang)
    markers = data["sync"]["marker_field_ids"]
    if request.is_save:
        kind = request.param("kind").strip()
        if kind not in KINDS:
            raise unknown_choice(request, "kind", kind)
        raw_id = request.param("field_id").strip()
        field = cat.field(kind, int(raw_id)) if raw_id.isdigit() else None
        if field is None or field.id == markers.get(kind):
            raise unknown_choice(request, "field_id", raw_id[:20])
        value = request.param("value").strip()
        if value not in dict(value_options(presets, kind, lang)):
            raise unknown_choice(request, "value", value)
        enum_map = (
            parse_enum_map(request, request.param("enum_map"), field) if field.type in SELECT_TYPES else {}
        )
        conditions = conditions_from_form(request, presets, kind, slots)
        rule = {
            "entity": kind,
            "field_id": field.id,
            "field_type": field.type,
            "value": value,
            "enum_map": enum_map,
            "conditions": conditions,
        }
        store_rule(
            request, config, presets, "fields", rule, current_id=current["id"] if current else "", cat=cat,
            version=version,
        )
        new = {
            "kind": kind,
            "field_id": str(field.id),
            "value": value,
            "enum_map": str(enum_map),
            **condition_values(conditions, slots),
        }
        before = (
            None
            if current is None
            else {
                "kind": current["entity"],
                "field_id": str(current["field_id"]),
                "value": current["value"],
                "enum_map": str(current.get("enum_map") or {}),
                **condition_values(current.get("conditions", ()), slots),
            }
        )
        return Reply(ok(request), changed=changed_fields(request, before, new))
    names = ["kind", "field_id", "value", "enum_map"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = submitted(request, names, {"kind": "lead"})
    else:
        chosen = cat.field(current["entity"], int(current["field_id"]))
        values = {
            "kind": current["entity"],
            "field_id": str(current["field_id"]),
            "value": current["value"],
            "enum_map": _enum_text(current.get("enum_map") or {}, chosen),
            **condition_values(current.get("conditions", ()), slots),
        }
    values["kind"] = values["kind"] if values["kind"] in KINDS else "lead"
    chosen = cat.field(values["kind"], int(values["field_id"])) if values["field_id"].isdigit() else None
    values["options"] = "\n".join(name for _, name in chosen.options) if chosen else ""
    slists = {
        "kind": kind_options(lang),
        "field_id": field_options(cat, values["kind"], markers.get(values["kind"]), lang),
        "value": value_options(presets, values["kind"], lang, blank=True),
        **condition_slists(presets, values["kind"], values, slots, lang),
    }
    values[backend.CONF_VERSION] = version
    return Reply(form(request, values, slists, new_rule_title(request, current)), result="opened")


# --------------------------------------------------------------------------- pipelines
def pipeline_options(cat: amo_catalog.Catalog, lang: str) -> Options:
    return [("", t("choose", lang))] + [(str(p.id), p.name) for p in cat.pipelines]


def status_options(cat: amo_catalog.Catalog, pipeline_id: str, lang: str) -> Options:
    """Statuses a lead may be put in: every status of the pipeline but "unsorted" (type 1)."""
    pipeline = cat.pipeline(int(pipeline_id)) if pipeline_id.isdigit() else None
    head = [("", t("choose", lang))]
    return head + (
        [(str(sid), name) for sid, name, stype in pipeline.statuses if stype != 1] if pipeline else []
    )


def pipelines_edit(request: PanelRequest) -> Reply:
    config, presets, read = backend.load_for_edit(request.lang)
    version = backend.opened_version(request, read)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = existing_rule(request, data, "pipelines")
    cat = amo_catalog.load(lang)
    if request.is_save:
        raw_pipeline = request.param("pipeline_id").strip()
        if not raw_pipeline.isdigit() or cat.pipeline(int(raw_pipeline)) is None:
            raise unknown_choice(request, "pipeline_id", raw_pipeline[:20])
        raw_status = request.param("status_id").strip()
        if raw_status not in dict(status_options(cat, raw_pipeline, lang)) or not raw_status:
            raise unknown_choice(request, "status_id", raw_status[:20])
        conditions = conditions_from_form(request, presets, "lead", slots)
        rule = {
            "pipeline_id": int(raw_pipeline),
            "status_id": int(raw_status),
            "conditions": conditions,
        }
        store_rule(
            request, config, presets, "pipelines", rule, current_id=current["id"] if current else "", cat=cat,
            version=version,
        )
        new = {"pipeline_id": raw_pipeline, "status_id": raw_status, **condition_values(conditions, slots)}
        before = (
            None
            if current is None
            else {
                "pipeline_id": str(current["pipeline_id"]),
                "status_id": str(current["status_id"]),
                **condition_values(current.get("conditions", ()), slots),
            }
        )
        return Reply(ok(request), changed=changed_fields(request, before, new))
    names = ["pipeline_id", "status_id"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = submitted(request, names, {})
    else:
        values = {
            "pipeline_id": str(current["pipeline_id"]),
            "status_id": str(current["status_id"]),
            **condition_values(current.get("conditions", ()), slots),
        }
    statuses = status_options(cat, values["pipeline_id"], lang)
    if values["status_id"] not in dict(statuses):
        values["status_id"] = ""
    slists = {
        "pipeline_id": pipeline_options(cat, lang),
        "status_id": statuses,
        **condition_slists(presets, "lead", values, slots, lang),
    }
    values[backend.CONF_VERSION] = version
    return Reply(form(request, values, slists, new_rule_title(request, current)), result="opened")
