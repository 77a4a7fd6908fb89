"""presets.default + presets.custom: the values and validators rules may use.

File format (JSON; presets.custom has the same shape, every part optional)::

    {"values": {"service": {"type": {"type": "enum"|"string"|..., "path": "type",
                                     "label": {"ru": "...", "en": "..."},
                                     "options": {"vds": {"ru": "...", "en": "..."}}}}},
     "validators": {"equals": {"operator": "equals", "takes_argument": true,
                               "label": {"ru": "равно", "en": "equals"},
                               "types": ["string", ...]}}}

A value's full name is ``<kind>.<key>`` (``service.type``, ``service.param.domain``);
its ``path`` is what ``attributes.attributes_of`` produces, and ``param.<intname>``
reads any BILLmanager itemparam, so presets.custom can expose any service
parameter. A custom validator is an existing operator, optionally with a fixed
``argument`` (then ``takes_argument`` is false): e.g. "domain in .ru zone" =
regex ``\\.ru$``. presets.custom replaces default entries of the same name whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from .attributes import KIND_OF_PRESET, attribute, is_known_path
from .conditions import NEEDS_ARGUMENT, OPERATOR_TYPES, ArgumentError, Compiled, compile_condition
from .errors import ConfigError, Problem
from .jsontext import Document, model_from

PresetKind = Literal["client", "payer", "service"]
ValueType = Literal["string", "int", "number", "date", "bool", "enum"]
Operator = Literal["equals", "not_equals", "in_list", "contains", "regex", "greater", "less", "empty",
                   "not_empty"]


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ru: StrictStr = Field(min_length=1)
    en: StrictStr = Field(min_length=1)

    def text(self, lang: str) -> str:
        return self.ru if lang == "ru" else self.en


class ValueDef(BaseModel):
    """A named BILLmanager value: what it reads and how it compares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ValueType
    label: Label
    path: StrictStr = Field(min_length=1)
    # enum only: stored value -> label (status 2 -> "Активна").
    options: Optional[Dict[str, Label]] = None

    def option_label(self, value: object, lang: str) -> Optional[str]:
        if self.options is None or value is None:
            return None
        found = self.options.get(str(value))
        return found.text(lang) if found else None


class ValidatorDef(BaseModel):
    """A named check: an operator, and maybe an argument fixed by the preset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operator: Operator
    label: Label
    takes_argument: StrictBool
    argument: Optional[StrictStr] = None
    types: Optional[Tuple[ValueType, ...]] = None

    def applies_to(self) -> Tuple[str, ...]:
        allowed = OPERATOR_TYPES[self.operator]
        return tuple(t for t in (self.types or sorted(allowed)) if t in allowed)


class PresetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    values: Dict[PresetKind, Dict[str, ValueDef]] = Field(default_factory=dict)
    validators: Dict[str, ValidatorDef] = Field(default_factory=dict)


class UnknownPresetError(LookupError):
    pass


@dataclass(frozen=True)
class Presets:
    """Merged presets; value names are full (``service.type``)."""

    values: Mapping[str, ValueDef]
    validators: Mapping[str, ValidatorDef]

    def value(self, name: str) -> ValueDef:
        try:
            return self.values[name]
        except KeyError:
            raise UnknownPresetError(f"unknown value {name!r}") from None

    def validator(self, name: str) -> ValidatorDef:
        try:
            return self.validators[name]
        except KeyError:
            raise UnknownPresetError(f"unknown validator {name!r}") from None

    def values_of(self, preset_kind: str) -> Dict[str, ValueDef]:
        prefix = preset_kind + "."
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}

    def named(self, preset_kind: str, attrs: Mapping[str, Any]) -> Dict[str, Any]:
        """Full value name -> value for one entity's attributes (for previews and the panel)."""
        return {name: attribute(attrs, value.path) for name, value in self.values_of(preset_kind).items()}

    def compile(self, value_name: str, validator_name: str, argument: Optional[str]) -> Compiled:
        """The condition as code; ``UnknownPresetError``/``ArgumentError`` say what is wrong."""
        value = self.value(value_name)
        validator = self.validator(validator_name)
        if value.type not in validator.applies_to():
            raise ArgumentError(f"validator {validator_name} does not apply to {value.type} values "
                                f"(applies to: {', '.join(validator.applies_to())})")
        if validator.takes_argument:
            given = argument
        else:
            if argument not in (None, ""):
                raise ArgumentError(f"validator {validator_name} takes no argument")
            given = validator.argument
        return compile_condition(value.path, value.type, validator.operator, given)


def preset_kind_of(value_name: str) -> str:
    return value_name.split(".", 1)[0]


# --------------------------------------------------------------------------- checks
def _check_value(kind: str, key: str, value: ValueDef) -> List[Problem]:
    where = f"values.{kind}.{key}"
    problems = []
    if not is_known_path(kind, value.path):
        problems.append(Problem(f"{where}.path", f"{value.path!r} is not an attribute of a {kind}"
                                                 + (" (use param.<intname> for service parameters)"
                                                    if kind == "service" else "")))
    if value.type == "enum" and not value.options:
        problems.append(Problem(f"{where}.options", "an enum value needs its options"))
    if value.type != "enum" and value.options is not None:
        problems.append(Problem(f"{where}.options", "only enum values have options"))
    return problems


def _check_validator(name: str, validator: ValidatorDef) -> List[Problem]:
    where = f"validators.{name}"
    op = validator.operator
    bad_types = [t for t in validator.types or () if t not in OPERATOR_TYPES[op]]
    if bad_types:
        return [Problem(f"{where}.types", f"operator {op} does not apply to {', '.join(bad_types)}")]
    if validator.takes_argument:
        if op not in NEEDS_ARGUMENT:
            return [Problem(f"{where}.takes_argument", f"operator {op} takes no argument")]
        if validator.argument is not None:
            return [Problem(f"{where}.argument", "a fixed argument means takes_argument must be false")]
        return []
    if op in NEEDS_ARGUMENT and validator.argument is None:
        return [Problem(f"{where}.argument", f"operator {op} needs an argument: give one here "
                                             "or set takes_argument to true")]
    if op not in NEEDS_ARGUMENT and validator.argument is not None:
        return [Problem(f"{where}.argument", f"operator {op} takes no argument")]
    for value_type in validator.applies_to():
        try:
            compile_condition("", value_type, op, validator.argument)
        except ArgumentError as exc:
            return [Problem(f"{where}.argument", f"for {value_type} values: {exc}")]
    return []


def check_presets_file(presets: PresetsFile) -> List[Problem]:
    problems: List[Problem] = []
    for kind, values in presets.values.items():
        for key, value in values.items():
            problems += _check_value(kind, key, value)
    for name, validator in presets.validators.items():
        problems += _check_validator(name, validator)
    return problems


# --------------------------------------------------------------------------- parse and merge
def parse_presets(data: object, source: str) -> PresetsFile:
    presets = model_from(PresetsFile, data, source)
    problems = check_presets_file(presets)
    if problems:
        raise ConfigError(source, problems)
    return presets


def merge_presets(default: PresetsFile, custom: Optional[PresetsFile] = None) -> Presets:
    values: Dict[str, ValueDef] = {}
    validators: Dict[str, ValidatorDef] = {}
    for part in (default, custom):
        if part is None:
            continue
        for kind, entries in part.values.items():
            assert kind in KIND_OF_PRESET
            for key, value in entries.items():
                values[f"{kind}.{key}"] = value
        validators.update(part.validators)
    return Presets(values=values, validators=validators)


def presets_from(default: Document, custom: Optional[Document] = None) -> Presets:
    """presets.default merged with presets.custom (when the admin wrote one), each checked."""
    return merge_presets(parse_presets(default.data(), default.source),
                         parse_presets(custom.data(), custom.source) if custom is not None else None)
