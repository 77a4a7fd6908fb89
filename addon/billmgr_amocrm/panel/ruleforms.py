"""Add/edit forms of the four rule sections: sync conditions, tags, custom fields, pipelines.

One code path renders a form on open and on setvalues (``sv_field``): the selects are computed
from the values at hand (entity -> its preset values; a value -> the checks that apply to its
type; a pipeline -> its statuses; a field -> its options). Saving validates the input against
the presets and the amoCRM catalog with localized, per-field errors, then applies the change
through ``rules.editing`` (the whole config re-validated), runs ``rules.check_against_catalog``
for the rule and writes amocrm.conf atomically: a bad rule is never half-saved.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

from . import backend
from . import catalog as amo_catalog
from .i18n import t
from .protocol import PanelRequest
from .responses import Options, PanelError, Reply, form, ok
from .ruleinputs import (
    KINDS,
    check_condition,
    condition_slists,
    condition_values,
    conditions_from_form,
    kind_options,
    validator_options,
    value_options,
)

SLOTS = {"amocrm.tags.edit": 3, "amocrm.fields.edit": 2, "amocrm.pipelines.edit": 3}
SELECT_TYPES = ("select", "radiobutton", "multiselect")


# --------------------------------------------------------------------------- config plumbing
def find_rule(data: Mapping[str, Any], section: str, rule_id: str) -> Dict[str, Any] | None:
    return next((dict(r) for r in data.get(section, ()) if r.get("id") == rule_id), None)


def store_rule(
    request: PanelRequest,
    config: Any,
    presets: Any,
    section: str,
    rule: Dict[str, Any],
    current_id: str = "",
    old_section: str = "",
    cat: amo_catalog.Catalog | None = None,
) -> str:
    """Add or update one rule through ``rules.editing`` (validated whole), check it against the
    amoCRM catalog, then write amocrm.conf atomically. Returns the rule id."""
    editing = backend.editing(request.lang)
    with backend.translated(request.lang):
        if current_id and old_section in ("", section):
            new = editing.update_rule(config, section, current_id, rule, presets)
            rule_id = current_id
        else:
            if current_id:  # a sync condition moved to another entity keeps its id
                config = editing.delete_rule(config, old_section, current_id, presets)
                rule = {**rule, "id": current_id}
            new, added = editing.add_rule(config, section, rule, presets)
            rule_id = added.id
    if cat is not None:
        amo_catalog.issues_for(cat, new, rule_id, request.lang)
    backend.save_rules(request.lang, new, presets)
    return rule_id


def _existing(request: PanelRequest, data: Mapping[str, Any], section: str) -> Dict[str, Any] | None:
    if not request.elid:
        return None
    rule = find_rule(data, section, request.elid)
    if rule is None:
        raise PanelError(t("rule_not_found", request.lang, id=request.elid[:64]), kind="missed")
    return rule


def _changed(request: PanelRequest, old: Mapping[str, str] | None, new: Mapping[str, str]) -> Tuple[str, ...]:
    """Names of the fields that differ (for a new rule: the ones filled in) for the action log."""
    if old is None:
        return tuple(k for k, v in new.items() if str(v))
    return tuple(k for k, v in new.items() if str(old.get(k, "")) != str(v))


def _submitted(request: PanelRequest, names: Sequence[str], defaults: Mapping[str, str]) -> Dict[str, str]:
    return {name: request.param(name, defaults.get(name, "")) for name in names}


# --------------------------------------------------------------------------- sync conditions
def conditions_edit(request: PanelRequest) -> Reply:
    config, presets = backend.load_rules(request.lang)
    data = config.model_dump(mode="json")
    lang = request.lang
    old_kind, _, old_id = request.elid.partition(":")
    current: Dict[str, Any] | None = None
    if request.elid:
        current = next((dict(c) for c in data["conditions"].get(old_kind, ()) if c.get("id") == old_id), None)
        if current is None:
            raise PanelError(t("rule_not_found", lang, id=request.elid[:64]), kind="missed")
        current["kind"] = old_kind
    fields = ("kind", "value", "validator", "argument")
    if request.is_save:
        kind = request.param("kind").strip()
        if kind not in KINDS:
            raise PanelError(t("unknown_choice", lang, field="kind", value=kind), obj="kind")
        cond = check_condition(
            presets,
            kind,
            request.param("value").strip(),
            request.param("validator").strip(),
            request.param("argument"),
            lang,
            "",
            1,
        )
        store_rule(
            request,
            config,
            presets,
            f"conditions.{kind}",
            dict(cond),
            current_id=old_id if current else "",
            old_section=f"conditions.{old_kind}" if current else "",
        )
        return Reply(ok(request), changed=_changed(request, current, {"kind": kind, **cond}))
    values = (
        _submitted(request, fields, {"kind": "lead"})
        if request.sv_field or not current
        else {k: str(current.get(k) or "") for k in fields}
    )
    values["kind"] = values["kind"] if values["kind"] in KINDS else "lead"
    slists = {
        "kind": kind_options(lang),
        "value": value_options(presets, values["kind"], lang, blank=True),
        "validator": validator_options(presets, values["value"], lang, blank=True),
    }
    return Reply(form(request, values, slists, _title(request, current)), result="opened")


def _title(request: PanelRequest, current: Mapping[str, Any] | None) -> Dict[str, str]:
    """New-rule forms show ``title_new``: the panel reads ``title``, so copy it over."""
    if current is not None or request.doc is None:
        return {}
    msg = request.doc.find(f"messages[@name='{request.func}']/msg[@name='title_new']")
    return {"title": msg.text or ""} if msg is not None and msg.text else {}


# --------------------------------------------------------------------------- tags
def tags_edit(request: PanelRequest) -> Reply:
    config, presets = backend.load_rules(request.lang)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = _existing(request, data, "tags")
    if request.is_save:
        kind = request.param("kind").strip()
        if kind not in KINDS:
            raise PanelError(t("unknown_choice", lang, field="kind", value=kind), obj="kind")
        tag = " ".join(request.param("tag").split())
        if not tag:
            raise PanelError(t("required", lang, field="tag"), obj="tag", kind="missed")
        conditions = conditions_from_form(request, presets, kind, slots)
        rule = {"entity": kind, "tag": tag[:255], "conditions": conditions}
        store_rule(request, config, presets, "tags", rule, current_id=current["id"] if current else "")
        before = (
            None
            if current is None
            else {
                "kind": current["entity"],
                "tag": current["tag"],
                **condition_values(current.get("conditions", ()), slots),
            }
        )
        return Reply(
            ok(request),
            changed=_changed(
                request, before, {"kind": kind, "tag": tag, **condition_values(conditions, slots)}
            ),
        )
    names = ["kind", "tag"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = _submitted(request, names, {"kind": "lead"})
    else:
        values = {
            "kind": current["entity"],
            "tag": current["tag"],
            **condition_values(current.get("conditions", ()), slots),
        }
    values["kind"] = values["kind"] if values["kind"] in KINDS else "lead"
    slists = {"kind": kind_options(lang), **condition_slists(presets, values["kind"], values, slots, lang)}
    return Reply(form(request, values, slists, _title(request, current)), result="opened")


# --------------------------------------------------------------------------- custom fields
def parse_enum_map(text: str, field: amo_catalog.AmoField, lang: str) -> Dict[str, int]:
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
            raise PanelError(
                t("unknown_choice", lang, field="enum_map", value=line.strip()[:100]), obj="enum_map"
            )
        if option.isdigit() and int(option) in ids:
            mapping[key] = int(option)
        elif option.casefold() in by_text:
            mapping[key] = by_text[option.casefold()]
        else:
            raise PanelError(t("unknown_choice", lang, field="enum_map", value=option[:100]), obj="enum_map")
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
    config, presets = backend.load_rules(request.lang)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = _existing(request, data, "fields")
    cat = amo_catalog.load(lang)
    markers = data["sync"]["marker_field_ids"]
    if request.is_save:
        kind = request.param("kind").strip()
        if kind not in KINDS:
            raise PanelError(t("unknown_choice", lang, field="kind", value=kind), obj="kind")
        raw_id = request.param("field_id").strip()
        field = cat.field(kind, int(raw_id)) if raw_id.isdigit() else None
        if field is None or field.id == markers.get(kind):
            raise PanelError(t("unknown_choice", lang, field="field_id", value=raw_id[:20]), obj="field_id")
        value = request.param("value").strip()
        if value not in dict(value_options(presets, kind, lang)):
            raise PanelError(t("unknown_choice", lang, field="value", value=value[:100]), obj="value")
        enum_map = (
            parse_enum_map(request.param("enum_map"), field, lang) if field.type in SELECT_TYPES else {}
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
            request, config, presets, "fields", rule, current_id=current["id"] if current else "", cat=cat
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
        return Reply(ok(request), changed=_changed(request, before, new))
    names = ["kind", "field_id", "value", "enum_map"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = _submitted(request, names, {"kind": "lead"})
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
    return Reply(form(request, values, slists, _title(request, current)), result="opened")


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
    config, presets = backend.load_rules(request.lang)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = _existing(request, data, "pipelines")
    cat = amo_catalog.load(lang)
    if request.is_save:
        raw_pipeline = request.param("pipeline_id").strip()
        if not raw_pipeline.isdigit() or cat.pipeline(int(raw_pipeline)) is None:
            raise PanelError(
                t("unknown_choice", lang, field="pipeline_id", value=raw_pipeline[:20]), obj="pipeline_id"
            )
        raw_status = request.param("status_id").strip()
        if raw_status not in dict(status_options(cat, raw_pipeline, lang)) or not raw_status:
            raise PanelError(
                t("unknown_choice", lang, field="status_id", value=raw_status[:20]), obj="status_id"
            )
        conditions = conditions_from_form(request, presets, "lead", slots)
        rule = {
            "pipeline_id": int(raw_pipeline),
            "status_id": int(raw_status),
            "conditions": conditions,
        }
        store_rule(
            request, config, presets, "pipelines", rule, current_id=current["id"] if current else "", cat=cat
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
        return Reply(ok(request), changed=_changed(request, before, new))
    names = ["pipeline_id", "status_id"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = _submitted(request, names, {})
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
    return Reply(form(request, values, slists, _title(request, current)), result="opened")
