"""Renewal task rules (issue 17.3): their list and add/edit form.

A rule: conditions on the service (up to three, from the presets, as the pipeline rules'),
``days_before`` its expiredate, the responsible user (amoCRM's active users; "not set" = the
sync's responsible user), the task's text with {service_name} {domain} {price} {expiredate},
and "skip auto-renewing services". First match wins, so the list keeps the file's order
(Up/Down in ``actions``). Saving goes through ``rules.editing`` (the whole config validated,
unknown placeholders refused with the path) and writes amocrm.conf atomically.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, Dict

from . import backend
from .i18n import t
from .lists import _rule_list, _rules
from .protocol import PanelRequest
from .responses import PanelError, Reply, form, ok
from .ruleforms import changed_fields, existing_rule, new_rule_title, store_rule, submitted
from .ruleinputs import condition_slists, condition_values, conditions_from_form
from .syncsettings import CHECKED, _catalog, checkbox, parse_user, user_options

SLOTS = 3
DAYS_RANGE = (0, 365)
TEXT_LIMIT = 2000


def renewals(request: PanelRequest) -> Reply:
    found, presets, editing = _rules(request, "renewals")
    lang = request.lang
    rows = []
    for index, rule in enumerate(found, start=1):
        conditions = t("and_join", lang).join(editing.describe_condition(c, presets, lang)
                                              for c in rule.conditions)
        rows.append({"id": rule.id, "position": index, "days_before": rule.days_before, "text": rule.text,
                     "conditions": conditions or t("no_conditions", lang)})
    return _rule_list(request, rows)


def _values(rule: Dict[str, Any]) -> Dict[str, str]:
    return {
        "days_before": str(rule.get("days_before", "")),
        "responsible_user_id": str(rule.get("responsible_user_id") or ""),
        "text": str(rule.get("text", "")),
        "skip_autoprolong": checkbox(bool(rule.get("skip_autoprolong", True))),
        **condition_values(rule.get("conditions", ()), SLOTS),
    }


def _days(request: PanelRequest) -> int:
    text = request.param("days_before").strip()
    if not text.isdigit() or not DAYS_RANGE[0] <= int(text) <= DAYS_RANGE[1]:
        raise PanelError(t("days_before_invalid", request.lang, field=request.label("days_before")),
                         obj="days_before", value=text[:20])
    return int(text)


def _text(request: PanelRequest) -> str:
    """The task's text; an unknown placeholder is named on the field (amoCRM would get it as is)."""
    text = request.param("text").strip()
    field = request.label("text")
    if not text:
        raise PanelError(t("required", request.lang, field=field), obj="text", kind="missed")
    placeholders = backend.rules_config(request.lang).RENEWAL_PLACEHOLDERS
    known = ", ".join("{" + p + "}" for p in placeholders)
    try:
        names = [name for _, name, _, _ in Formatter().parse(text) if name is not None]
    except ValueError:
        names = ["{"]
    unknown = [n for n in names if n not in placeholders]
    if unknown:
        name = "{" + unknown[0] + "}"
        message = t("placeholder_unknown", request.lang, field=field, name=name, known=known)
        raise PanelError(message, obj="text")
    return text[:TEXT_LIMIT]


def renewals_edit(request: PanelRequest) -> Reply:
    config, presets, read = backend.load_for_edit(request.lang)
    version = backend.opened_version(request, read)
    lang = request.lang
    current = existing_rule(request, config.model_dump(mode="json"), "renewals")
    cat, _ = _catalog(lang)
    if request.is_save:
        user = parse_user(request)
        if user is not None and cat is not None and user not in dict(cat.active_users()) and \
                (current is None or user != current.get("responsible_user_id")):
            raise PanelError(t("catalog_issue", lang, field=request.label("responsible_user_id"),
                               detail=t("user_missing", lang, id=user)), obj="responsible_user_id")
        rule = {
            "days_before": _days(request),
            "responsible_user_id": user,
            "text": _text(request),
            "skip_autoprolong": request.param("skip_autoprolong").strip().lower() in CHECKED,
            "conditions": conditions_from_form(request, presets, "lead", SLOTS),
        }
        store_rule(request, config, presets, "renewals", rule, current_id=current["id"] if current else "",
                   version=version)
        before = None if current is None else _values(current)
        return Reply(ok(request), changed=changed_fields(request, before, _values(rule)))
    names = list(_values({}))
    if request.sv_field or current is None:
        values = submitted(request, names, {"days_before": "14", "skip_autoprolong": "on",
                                            "text": t("renewal_text_default", lang)})
    else:
        values = _values(current)
    chosen = values["responsible_user_id"]
    slists = {
        "responsible_user_id": user_options(cat, int(chosen) if chosen.isdigit() else None, lang),
        **condition_slists(presets, "lead", values, SLOTS, lang),
    }
    values[backend.CONF_VERSION] = version
    return Reply(form(request, values, slists, new_rule_title(request, current)), result="opened")
