"""The nine condition operators, type-aware, compiled once and evaluated many times.

A condition is (attribute path, value type, operator, argument). ``compile_condition``
parses the argument for the value's type and raises ``ArgumentError`` for anything
unusable, so a bad rule fails when the config is loaded or saved, never during a
sync. ``Compiled.holds`` never raises: a missing or dirty attribute simply does not
satisfy the comparison (``not_equals`` and ``empty`` are then true).

Semantics:
  strings and enums  compared trimmed and case-insensitively (casefold);
  int and number     compared as decimals ("10" == 10.0), commas accepted as decimal points;
  date               YYYY-MM-DD or DD.MM.YYYY, compared as calendar dates;
  bool               true/false, 1/0, yes/no, да/нет, on/off;
  in_list            items separated by commas or newlines, each parsed as above;
  regex              Python ``re.search`` (anchor with ^...$ for a whole match),
                     case-insensitive. Python's ``re`` has no timeout, so the
                     worst case is bounded instead: patterns are capped at
                     MAX_PATTERN_LENGTH characters, a quantified group that itself
                     contains a quantifier (``(a+)+``, the classic catastrophic
                     backtracking shape) is refused, and the subject is cut to
                     MAX_SUBJECT_LENGTH characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, FrozenSet, Mapping, Optional, Pattern, Tuple

VALUE_TYPES = ("string", "int", "number", "date", "bool", "enum")

OPERATORS = ("equals", "not_equals", "in_list", "contains", "regex", "greater", "less", "empty",
             "not_empty")

# Operators that need an argument (from the rule, or fixed by a preset validator).
NEEDS_ARGUMENT: FrozenSet[str] = frozenset(OPERATORS) - {"empty", "not_empty"}

# The value types each operator can work on; a preset validator may narrow this.
OPERATOR_TYPES: Dict[str, FrozenSet[str]] = {
    "equals": frozenset(VALUE_TYPES),
    "not_equals": frozenset(VALUE_TYPES),
    "in_list": frozenset(VALUE_TYPES) - {"bool"},
    "contains": frozenset({"string", "enum"}),
    "regex": frozenset({"string", "enum"}),
    "greater": frozenset({"int", "number", "date"}),
    "less": frozenset({"int", "number", "date"}),
    "empty": frozenset(VALUE_TYPES),
    "not_empty": frozenset(VALUE_TYPES),
}

MAX_PATTERN_LENGTH = 200
MAX_SUBJECT_LENGTH = 2000
MAX_ARGUMENT_LENGTH = 4000

_LIST_SEPARATORS = re.compile(r"[,\n\r]+")
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d+,\d*\})\)(?:[+*]|\{\d+,\d*\})")
_TRUE = frozenset({"true", "1", "yes", "y", "on", "да"})
_FALSE = frozenset({"false", "0", "no", "n", "off", "нет"})


class ArgumentError(ValueError):
    """A condition argument that cannot be used with this operator and value type."""


# --------------------------------------------------------------------------- coercion
def as_text(value: Any) -> Optional[str]:
    """Normalised comparison text of a value, or None when there is none."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()[:10]
    if isinstance(value, (str, int, Decimal, float)):
        text = str(value).strip()
        return text.casefold()
    return None


def as_decimal(value: Any) -> Optional[Decimal]:
    if value is None or isinstance(value, (bool, date)):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", ".").replace(" ", ""))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def as_date(value: Any) -> Optional[date]:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text[:10], fmt).date()  # noqa: DTZ007 - a calendar date, no zone
        except ValueError:
            continue
    return None


def as_bool(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)):
        return value != 0
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


_COERCE: Dict[str, Callable[[Any], Any]] = {
    "string": as_text,
    "enum": as_text,
    "int": as_decimal,
    "number": as_decimal,
    "date": as_date,
    "bool": as_bool,
}


def is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return not value
    return False


# --------------------------------------------------------------------------- compile
def _parse_one(value_type: str, text: str) -> Any:
    parsed = _COERCE[value_type](text)
    if parsed is None or (isinstance(parsed, str) and not parsed):
        raise ArgumentError(f"{text!r} is not a valid {value_type} value")
    return parsed


def compile_regex(pattern: str) -> Pattern[str]:
    """Compile an admin's pattern, refusing the shapes that can hang the worker."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ArgumentError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    if _NESTED_QUANTIFIER.search(pattern):
        raise ArgumentError("regular expression has a repeated group that itself repeats "
                            "(like (a+)+), which can take forever to match")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ArgumentError(f"invalid regular expression: {exc}") from None


def _parse_argument(operator: str, value_type: str, argument: Optional[str]) -> Any:
    if operator not in NEEDS_ARGUMENT:
        return None
    text = "" if argument is None else str(argument)
    if not text.strip():
        raise ArgumentError(f"operator {operator} needs an argument")
    if len(text) > MAX_ARGUMENT_LENGTH:
        raise ArgumentError(f"argument longer than {MAX_ARGUMENT_LENGTH} characters")
    if operator == "regex":
        return compile_regex(text)
    if operator == "contains":
        return text.strip().casefold()
    if operator == "in_list":
        items = [item.strip() for item in _LIST_SEPARATORS.split(text) if item.strip()]
        if not items:
            raise ArgumentError("in_list needs at least one item")
        return tuple(_parse_one(value_type, item) for item in items)
    return _parse_one(value_type, text.strip())


@dataclass(frozen=True)
class Compiled:
    """A ready-to-evaluate condition on one attribute path."""

    path: str
    value_type: str
    operator: str
    argument: Any

    def holds(self, attrs: Mapping[str, Any]) -> bool:
        value = attrs.get(self.path)
        if self.operator == "empty":
            return is_empty(value)
        if self.operator == "not_empty":
            return not is_empty(value)
        if self.operator == "not_equals":
            return not self._equals(value)
        if self.operator == "equals":
            return self._equals(value)
        if self.operator == "in_list":
            actual = _COERCE[self.value_type](value)
            return actual is not None and actual in self.argument
        return self._compare(value)

    def _equals(self, value: Any) -> bool:
        actual = _COERCE[self.value_type](value)
        return actual is not None and actual == self.argument

    def _compare(self, value: Any) -> bool:
        if self.operator in ("contains", "regex"):
            text = "" if value is None else str(value) if not isinstance(value, bool) else ""
            if not text:
                return False
            if self.operator == "contains":
                return self.argument in text.casefold()
            return self.argument.search(text[:MAX_SUBJECT_LENGTH]) is not None
        actual = _COERCE[self.value_type](value)
        if actual is None:
            return False
        if self.operator == "greater":
            return bool(actual > self.argument)
        return bool(actual < self.argument)


def compile_condition(path: str, value_type: str, operator: str, argument: Optional[str]) -> Compiled:
    """Check and parse one condition; ``ArgumentError`` says what is wrong in words."""
    if value_type not in VALUE_TYPES:
        raise ArgumentError(f"unknown value type {value_type!r}")
    if operator not in OPERATORS:
        raise ArgumentError(f"unknown operator {operator!r}")
    if value_type not in OPERATOR_TYPES[operator]:
        raise ArgumentError(f"operator {operator} does not apply to {value_type} values")
    return Compiled(path, value_type, operator, _parse_argument(operator, value_type, argument))


def all_hold(conditions: Tuple[Compiled, ...], attrs: Mapping[str, Any]) -> bool:
    return all(c.holds(attrs) for c in conditions)
