"""What the rule forms share: entity/value/check choices from the presets, and condition slots.

A form offers up to N condition slots (``c1_value``, ``c1_validator``, ``c1_argument``, ...);
every filled slot must hold. Choices come from the presets: an entity's values, and for a value
only the checks that apply to its type. Input is checked here with a localized message naming
the field to fix; the rules layer then validates the whole config again before it is saved.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from .i18n import t
from .protocol import PanelRequest
from .responses import Options, PanelError

KINDS = ("contact", "company", "lead")
PRESET_KIND = {"contact": "client", "company": "payer", "lead": "service"}


# --------------------------------------------------------------------------- options
def kind_options(lang: str) -> Options:
    return [(kind, t(f"kind_{kind}", lang)) for kind in KINDS]


def value_options(presets: Any, kind: str, lang: str, blank: bool = False) -> Options:
    values = presets.values_of(PRESET_KIND.get(kind, "service"))
    options = [(name, f"{value.label.text(lang)} ({name})") for name, value in sorted(values.items())]
    return ([("", t("choose", lang))] if blank else []) + options


def validator_options(presets: Any, value_name: str, lang: str, blank: bool = False) -> Options:
    value = presets.values.get(value_name)
    head = [("", t("choose", lang))] if blank else []
    if value is None:
        return head
    return head + [
        (name, v.label.text(lang)) for name, v in presets.validators.items() if value.type in v.applies_to()
    ]


# --------------------------------------------------------------------------- conditions
def condition_values(conditions: Sequence[Mapping[str, Any]], slots: int) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for index in range(1, slots + 1):
        cond = conditions[index - 1] if index <= len(conditions) else {}
        values[f"c{index}_value"] = str(cond.get("value") or "")
        values[f"c{index}_validator"] = str(cond.get("validator") or "")
        values[f"c{index}_argument"] = str(cond.get("argument") or "")
    return values


def unknown_choice(request: PanelRequest, name: str, value: str) -> PanelError:
    """The error for a value that is not one of a select's choices, naming the field by its label."""
    text = t("unknown_choice", request.lang, field=request.label(name), value=value[:100])
    return PanelError(text, obj=name)


def check_condition(
    request: PanelRequest, presets: Any, kind: str, value: str, validator: str, argument: str, prefix: str
) -> Dict[str, Any]:
    """One condition from the form (fields ``<prefix>value``, ``validator``, ``argument``), or a
    :class:`PanelError` naming the field to fix by its label."""
    lang = request.lang
    values = dict(value_options(presets, kind, lang))
    if value not in values:
        raise unknown_choice(request, f"{prefix}value", value)
    validators = dict(validator_options(presets, value, lang))
    if validator not in validators:
        raise unknown_choice(request, f"{prefix}validator", validator)
    definition = presets.validators[validator]
    field = request.label(f"{prefix}argument")
    if definition.takes_argument and not argument.strip():
        raise PanelError(t("argument_required", lang, field=field, validator=validators[validator]),
                         obj=f"{prefix}argument")
    cond: Dict[str, Any] = {
        "value": value,
        "validator": validator,
        "argument": argument.strip() if definition.takes_argument else None,
    }
    try:
        presets.compile(value, validator, cond["argument"])
    except (LookupError, ValueError) as exc:
        raise PanelError(
            t("argument_invalid", lang, field=field, validator=validators[validator], detail=str(exc)[:200]),
            obj=f"{prefix}argument", detail=str(exc),
        ) from None
    return cond


def conditions_from_form(request: PanelRequest, presets: Any, kind: str, slots: int) -> List[Dict[str, Any]]:
    conditions = []
    for index in range(1, slots + 1):
        prefix = f"c{index}_"
        value = request.param(prefix + "value").strip()
        validator = request.param(prefix + "validator").strip()
        argument = request.param(prefix + "argument")
        if not value and not validator:
            continue
        if not value or not validator:
            raise PanelError(
                t("condition_incomplete", request.lang, value=request.label(prefix + "value"),
                  validator=request.label(prefix + "validator")),
                obj=prefix + ("value" if not value else "validator"),
            )
        conditions.append(check_condition(request, presets, kind, value, validator, argument, prefix))
    return conditions


def condition_slists(
    presets: Any, kind: str, values: Mapping[str, str], slots: int, lang: str
) -> Dict[str, Options]:
    lists: Dict[str, Options] = {}
    for index in range(1, slots + 1):
        lists[f"c{index}_value"] = value_options(presets, kind, lang, blank=True)
        lists[f"c{index}_validator"] = validator_options(
            presets, values.get(f"c{index}_value", ""), lang, blank=True
        )
    return lists
