"""Add/edit forms of the rule sections that need only the presets: sync conditions and tags.

Also the plumbing every rule form shares (``catalogforms`` holds the two that pick from
amoCRM's catalog: custom fields and pipelines). One code path renders a form on open and
on setvalues (``sv_field``): the selects are computed from the values at hand (entity ->
its preset values; a value -> the checks that apply to its type; a pipeline -> its
statuses; a field -> its options). Saving validates the input against the presets and the
amoCRM catalog with localized, per-field errors, then applies the change through
``rules.editing`` (the whole config re-validated), runs ``rules.check_against_catalog`` for
the rule and writes amocrm.conf atomically: a bad rule is never half-saved.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

from . import backend
from . import catalog as amo_catalog
from .i18n import t
from .protocol import PanelRequest
from .responses import PanelError, Reply, form, ok
from .ruleinputs import (
    KINDS,
    check_condition,
    condition_slists,
    condition_values,
    conditions_from_form,
    kind_options,
    unknown_choice,
    validator_options,
    value_options,
)

SLOTS = {"amocrm.tags.edit": 3, "amocrm.fields.edit": 2, "amocrm.pipelines.edit": 3}


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
    version: str = "",
) -> str:
    """Add or update one rule through ``rules.editing`` (validated whole), check it against the
    amoCRM catalog, then write amocrm.conf atomically, unless it changed since ``version`` (the
    form's). Returns the rule id."""
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
        amo_catalog.issues_for(cat, new, rule_id, request)
    backend.save_rules(request.lang, new, presets, version)
    return rule_id


def existing_rule(request: PanelRequest, data: Mapping[str, Any], section: str) -> Dict[str, Any] | None:
    if not request.elid:
        return None
    rule = find_rule(data, section, request.elid)
    if rule is None:
        raise PanelError(t("rule_not_found", request.lang, id=request.elid[:64]), kind="missed")
    return rule


def changed_fields(request: PanelRequest, old: Mapping[str, str] | None,
                   new: Mapping[str, str]) -> Tuple[str, ...]:
    """Names of the fields that differ (for a new rule: the ones filled in) for the action log."""
    if old is None:
        return tuple(k for k, v in new.items() if str(v))
    return tuple(k for k, v in new.items() if str(old.get(k, "")) != str(v))


def submitted(request: PanelRequest, names: Sequence[str], defaults: Mapping[str, str]) -> Dict[str, str]:
    return {name: request.param(name, defaults.get(name, "")) for name in names}


# --------------------------------------------------------------------------- sync conditions
def conditions_edit(request: PanelRequest) -> Reply:
    config, presets, read = backend.load_for_edit(request.lang)
    version = backend.opened_version(request, read)
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
            raise unknown_choice(request, "kind", kind)
        cond = check_condition(
            request,
            presets,
            kind,
            request.param("value").strip(),
            request.param("validator").strip(),
            request.param("argument"),
            "",
        )
        store_rule(
            request,
            config,
            presets,
            f"conditions.{kind}",
            dict(cond),
            current_id=old_id if current else "",
            old_section=f"conditions.{old_kind}" if current else "",
            version=version,
        )
        return Reply(ok(request), changed=changed_fields(request, current, {"kind": kind, **cond}))
    values = (
        submitted(request, fields, {"kind": "lead"})
        if request.sv_field or not current
        else {k: str(current.get(k) or "") for k in fields}
    )
    values["kind"] = values["kind"] if values["kind"] in KINDS else "lead"
    slists = {
        "kind": kind_options(lang),
        "value": value_options(presets, values["kind"], lang, blank=True),
        "validator": validator_options(presets, values["value"], lang, blank=True),
    }
    values[backend.CONF_VERSION] = version
    return Reply(form(request, values, slists, new_rule_title(request, current)), result="opened")


def new_rule_title(request: PanelRequest, current: Mapping[str, Any] | None) -> Dict[str, str]:
    """New-rule forms show ``title_new``: the panel reads ``title``, so copy it over."""
    if current is not None or request.doc is None:
        return {}
    msg = request.doc.find(f"messages[@name='{request.func}']/msg[@name='title_new']")
    return {"title": msg.text or ""} if msg is not None and msg.text else {}


# --------------------------------------------------------------------------- tags
def tags_edit(request: PanelRequest) -> Reply:
    config, presets, read = backend.load_for_edit(request.lang)
    version = backend.opened_version(request, read)
    data = config.model_dump(mode="json")
    lang, slots = request.lang, SLOTS[request.func]
    current = existing_rule(request, data, "tags")
    if request.is_save:
        kind = request.param("kind").strip()
        if kind not in KINDS:
            raise unknown_choice(request, "kind", kind)
        tag = " ".join(request.param("tag").split())
        if not tag:
            raise PanelError(t("required", lang, field=request.label("tag")), obj="tag", kind="missed")
        conditions = conditions_from_form(request, presets, kind, slots)
        rule = {"entity": kind, "tag": tag[:255], "conditions": conditions}
        store_rule(request, config, presets, "tags", rule, current_id=current["id"] if current else "",
                   version=version)
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
            changed=changed_fields(
                request, before, {"kind": kind, "tag": tag, **condition_values(conditions, slots)}
            ),
        )
    names = ["kind", "tag"] + list(condition_values([], slots))
    if request.sv_field or current is None:
        values = submitted(request, names, {"kind": "lead"})
    else:
        values = {
            "kind": current["entity"],
            "tag": current["tag"],
            **condition_values(current.get("conditions", ()), slots),
        }
    values["kind"] = values["kind"] if values["kind"] in KINDS else "lead"
    slists = {"kind": kind_options(lang), **condition_slists(presets, values["kind"], values, slots, lang)}
    values[backend.CONF_VERSION] = version
    return Reply(form(request, values, slists, new_rule_title(request, current)), result="opened")
