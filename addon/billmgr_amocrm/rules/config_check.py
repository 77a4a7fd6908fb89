"""amocrm.conf checked against the presets: every value, validator and argument a rule names.

Pure. ``config_from`` turns the file's text (or its absence: the defaults) into a
checked :class:`~.config.ModuleConfig`; ``config_text`` is what a save writes, checked
the same way first, so a refused config writes nothing. Every problem names the path
inside the file (``tags.2.conditions.0.argument``) and what is wrong.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, List, Optional

from ..domain import Kind
from .attributes import PRESET_KIND_OF
from .conditions import ArgumentError
from .config import (
    RENEWAL_PLACEHOLDERS,
    SELECT_TYPES,
    Condition,
    FieldRule,
    ModuleConfig,
    config_json,
    default_config,
)
from .errors import ConfigError, Problem
from .jsontext import Document, model_from, parse_json_text
from .presets import Presets, UnknownPresetError, preset_kind_of
from .text import clean_text

DEFAULT_SOURCE = "amocrm.conf"


def condition_problems(where: str, entity: str, cond: Condition, presets: Presets) -> List[Problem]:
    kind = PRESET_KIND_OF[Kind(entity)]
    if preset_kind_of(cond.value) != kind or cond.value not in presets.values:
        known = "unknown value" if cond.value not in presets.values else f"not a {kind} value"
        return [Problem(f"{where}.value", f"{known} {cond.value!r} (a {entity} rule reads {kind}.* values)")]
    try:
        presets.compile(cond.value, cond.validator, cond.argument)
    except UnknownPresetError as exc:
        return [Problem(f"{where}.validator", str(exc))]
    except ArgumentError as exc:
        return [Problem(f"{where}.argument", str(exc))]
    return []


def _ids_unique(section: str, ids: List[str]) -> List[Problem]:
    seen: set[str] = set()
    problems = []
    for index, rule_id in enumerate(ids):
        if rule_id in seen:
            problems.append(Problem(f"{section}.{index}.id", f"id {rule_id!r} is used twice"))
        seen.add(rule_id)
    return problems


def _field_rule_problems(index: int, rule: FieldRule, config: ModuleConfig,
                         presets: Presets) -> List[Problem]:
    where = f"fields.{index}"
    problems = []
    kind = PRESET_KIND_OF[Kind(rule.entity)]
    if rule.value not in presets.values or preset_kind_of(rule.value) != kind:
        problems.append(Problem(f"{where}.value", f"unknown {kind} value {rule.value!r}"))
    if rule.enum_map and rule.field_type not in SELECT_TYPES:
        problems.append(Problem(f"{where}.enum_map", f"only select fields map values, not {rule.field_type}"))
    marker = getattr(config.sync.marker_field_ids, rule.entity)
    if marker is not None and marker == rule.field_id:
        problems.append(Problem(f"{where}.field_id", "this is the module's BILLmanager ID field"))
    for c_index, cond in enumerate(rule.conditions):
        problems += condition_problems(f"{where}.conditions.{c_index}", rule.entity, cond, presets)
    return problems


def config_problems(config: ModuleConfig, presets: Presets) -> List[Problem]:
    """Everything in the config that presets or amoCRM's rules make unusable."""
    problems: List[Problem] = []
    for kind in Kind:
        items = config.conditions.of(kind)
        problems += _ids_unique(f"conditions.{kind.value}", [c.id for c in items])
        for index, sync_cond in enumerate(items):
            problems += condition_problems(f"conditions.{kind.value}.{index}", kind.value, sync_cond,
                                           presets)
    problems += _ids_unique("tags", [r.id for r in config.tags])
    for index, tag in enumerate(config.tags):
        if not clean_text(tag.tag):
            problems.append(Problem(f"tags.{index}.tag", "tag name is empty"))
        for c_index, cond in enumerate(tag.conditions):
            problems += condition_problems(f"tags.{index}.conditions.{c_index}", tag.entity, cond, presets)
    problems += _ids_unique("fields", [r.id for r in config.fields])
    for index, field in enumerate(config.fields):
        problems += _field_rule_problems(index, field, config, presets)
    problems += _ids_unique("pipelines", [r.id for r in config.pipelines])
    for index, pipe in enumerate(config.pipelines):
        for c_index, cond in enumerate(pipe.conditions):
            problems += condition_problems(f"pipelines.{index}.conditions.{c_index}", "lead", cond, presets)
    problems += _ids_unique("renewals", [r.id for r in config.renewals])
    for index, renewal in enumerate(config.renewals):
        problems += _placeholder_problems(f"renewals.{index}.text", renewal.text)
        for c_index, cond in enumerate(renewal.conditions):
            problems += condition_problems(f"renewals.{index}.conditions.{c_index}", "lead", cond, presets)
    return problems


def _placeholder_problems(where: str, text: str) -> List[Problem]:
    """A task text may name only the known placeholders (a typo would reach amoCRM as is)."""
    try:
        names = [name for _, name, _, _ in Formatter().parse(text) if name is not None]
    except ValueError:
        return [Problem(where, "unbalanced { or }; write {{ and }} for the characters themselves")]
    unknown = sorted({n for n in names if n not in RENEWAL_PLACEHOLDERS})
    if unknown:
        return [Problem(where, f"unknown placeholder {{{unknown[0]}}}; known: "
                               + ", ".join("{" + p + "}" for p in RENEWAL_PLACEHOLDERS))]
    return []


def validated(config: ModuleConfig, presets: Presets, source: str = DEFAULT_SOURCE) -> ModuleConfig:
    problems = config_problems(config, presets)
    if problems:
        raise ConfigError(source, problems)
    return config


def config_from_data(data: Any, presets: Presets, source: str = DEFAULT_SOURCE) -> ModuleConfig:
    return validated(model_from(ModuleConfig, data, source), presets, source)


def config_from(document: Optional[Document], presets: Presets) -> ModuleConfig:
    """amocrm.conf as read, checked against the presets; no file yet means the defaults."""
    if document is None:
        return default_config()
    return config_from_data(document.data(), presets, document.source)


def config_text(config: ModuleConfig, presets: Presets, source: str = DEFAULT_SOURCE) -> str:
    """What saving ``config`` writes; ``ConfigError`` (nothing to write) if it is not usable."""
    text = config_json(validated(config, presets, source))
    # Round-trip through the parser: what is written must load back identically.
    config_from_data(parse_json_text(text, source), presets, source)
    return text
