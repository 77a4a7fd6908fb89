"""Rule editing for the panel: pure functions from one ModuleConfig to the next.

Sections: ``conditions.contact``, ``conditions.company``, ``conditions.lead``
(sync conditions), ``tags``, ``fields``, ``pipelines`` and ``renewals`` (both ordered:
first match wins, hence ``move_rule``). Every change returns a new, fully validated config
(``ConfigError`` names the path of the offending part, e.g.
``tags.2.conditions.0.argument``); the caller then saves it (``settings.save_config``).
``describe_rule`` renders a rule as one sentence for lists and logs.
"""

from __future__ import annotations

import secrets
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from pydantic import BaseModel

from .config import (
    Condition,
    FieldRule,
    ModuleConfig,
    PipelineRule,
    RenewalRule,
    SyncCondition,
    TagRule,
    rebuild,
)
from .config_check import validated
from .errors import ConfigError, Problem, UnknownRuleError
from .presets import Presets

Rule = Union[SyncCondition, TagRule, FieldRule, PipelineRule, RenewalRule]
SECTIONS = ("conditions.contact", "conditions.company", "conditions.lead", "tags", "fields", "pipelines",
            "renewals")
_PREFIX = {"tags": "t", "fields": "f", "pipelines": "p", "renewals": "r"}


def _check_section(section: str) -> None:
    if section not in SECTIONS:
        known = ", ".join(SECTIONS)
        raise ConfigError(None, [Problem("section", f"unknown section {section!r}; one of {known}")])


def list_rules(config: ModuleConfig, section: str) -> Tuple[Rule, ...]:
    _check_section(section)
    if section.startswith("conditions."):
        return tuple(getattr(config.conditions, section.split(".", 1)[1]))
    return tuple(getattr(config, section))


def get_rule(config: ModuleConfig, section: str, rule_id: str) -> Rule:
    for rule in list_rules(config, section):
        if rule.id == rule_id:
            return rule
    raise UnknownRuleError(section, rule_id)


def _all_ids(config: ModuleConfig) -> set[str]:
    return {rule.id for section in SECTIONS for rule in list_rules(config, section)}


def new_rule_id(config: ModuleConfig, section: str) -> str:
    """A fresh random id, so a panel page left open never edits a rule that replaced a deleted one."""
    prefix = _PREFIX.get(section, "c")
    taken = _all_ids(config)
    while True:
        candidate = prefix + secrets.token_hex(4)
        if candidate not in taken:
            return candidate


def _with_rules(config: ModuleConfig, section: str, rules: Sequence[Mapping[str, Any]],
                presets: Presets) -> ModuleConfig:
    if section.startswith("conditions."):
        kind = section.split(".", 1)[1]
        conditions = config.conditions.model_dump(mode="json")
        conditions[kind] = list(rules)
        return validated(rebuild(config, {"conditions": conditions}), presets)
    return validated(rebuild(config, {section: list(rules)}), presets)


def _data(rule: Union[Rule, Mapping[str, Any]]) -> Dict[str, Any]:
    return rule.model_dump(mode="json") if isinstance(rule, BaseModel) else dict(rule)


def _dumped(config: ModuleConfig, section: str) -> List[Dict[str, Any]]:
    return [r.model_dump(mode="json") for r in list_rules(config, section)]


def add_rule(config: ModuleConfig, section: str, rule: Union[Rule, Mapping[str, Any]], presets: Presets,
             position: Optional[int] = None) -> Tuple[ModuleConfig, Rule]:
    """Append (or insert at ``position``) a rule; an id is assigned when it has none."""
    _check_section(section)
    data = _data(rule)
    if not data.get("id"):
        data["id"] = new_rule_id(config, section)
    rules = _dumped(config, section)
    rules.insert(len(rules) if position is None else position, data)
    new = _with_rules(config, section, rules, presets)
    return new, get_rule(new, section, data["id"])


def update_rule(config: ModuleConfig, section: str, rule_id: str, rule: Union[Rule, Mapping[str, Any]],
                presets: Presets) -> ModuleConfig:
    """Replace a rule's content; its id and position stay."""
    get_rule(config, section, rule_id)
    data = {**_data(rule), "id": rule_id}
    rules = [data if r["id"] == rule_id else r for r in _dumped(config, section)]
    return _with_rules(config, section, rules, presets)


def delete_rule(config: ModuleConfig, section: str, rule_id: str, presets: Presets) -> ModuleConfig:
    get_rule(config, section, rule_id)
    rules = [r for r in _dumped(config, section) if r["id"] != rule_id]
    return _with_rules(config, section, rules, presets)


def move_rule(config: ModuleConfig, section: str, rule_id: str, position: int,
              presets: Presets) -> ModuleConfig:
    """Put a rule at ``position`` (0 = first); order decides which pipeline rule wins."""
    get_rule(config, section, rule_id)
    rules = _dumped(config, section)
    moving = next(r for r in rules if r["id"] == rule_id)
    rules.remove(moving)
    rules.insert(max(0, min(position, len(rules))), moving)
    return _with_rules(config, section, rules, presets)


# --------------------------------------------------------------------------- describe
_WORDS = {
    "ru": {"always": "всегда", "and": " и ", "tag": "тег", "field": "поле", "pipeline": "воронка",
           "status": "этап", "if": "если", "contact": "Контакт", "company": "Компания", "lead": "Сделка",
           "task": "задача за {days} дн. до окончания"},
    "en": {"always": "always", "and": " and ", "tag": "tag", "field": "field", "pipeline": "pipeline",
           "status": "status", "if": "if", "contact": "Contact", "company": "Company", "lead": "Lead",
           "task": "a task {days} days before expiry"},
}


def describe_condition(cond: Condition, presets: Presets, lang: str = "ru") -> str:
    """"Тип услуги равно vds"; unknown names are shown as they are, never an error."""
    value = presets.values.get(cond.value)
    validator = presets.validators.get(cond.validator)
    parts = [value.label.text(lang) if value else cond.value,
             validator.label.text(lang) if validator else cond.validator]
    if cond.argument not in (None, "") and (validator is None or validator.takes_argument):
        argument = str(cond.argument)
        label = value.option_label(argument, lang) if value else None
        parts.append(f"{argument} ({label})" if label else argument)
    return " ".join(parts)


def _conditions_text(conditions: Sequence[Condition], presets: Presets, lang: str) -> str:
    words = _WORDS.get(lang, _WORDS["en"])
    if not conditions:
        return words["always"]
    return words["and"].join(describe_condition(c, presets, lang) for c in conditions)


def describe_rule(rule: Rule, presets: Presets, lang: str = "ru") -> str:
    """One line for the panel: "Тип услуги равно vds → тег vps"."""
    words = _WORDS.get(lang, _WORDS["en"])
    if isinstance(rule, SyncCondition):
        return describe_condition(rule, presets, lang)
    conditions = _conditions_text(rule.conditions, presets, lang)
    if isinstance(rule, TagRule):
        return f"{words[rule.entity]}: {conditions} → {words['tag']} {rule.tag}"
    if isinstance(rule, FieldRule):
        value = presets.values.get(rule.value)
        source = value.label.text(lang) if value else rule.value
        prefix = "" if not rule.conditions else f"{words['if']} {conditions}: "
        return f"{words[rule.entity]}: {prefix}{source} → {words['field']} #{rule.field_id}"
    if isinstance(rule, RenewalRule):
        return f"{conditions} → {words['task'].format(days=rule.days_before)}"
    return f"{conditions} → {words['pipeline']} #{rule.pipeline_id}, {words['status']} #{rule.status_id}"
