"""The nine operators: type-aware, total on dirty data, bad arguments refused up front."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Optional

import pytest

from billmgr_amocrm.rules.conditions import MAX_PATTERN_LENGTH, ArgumentError, compile_condition


def holds(value_type: str, operator: str, argument: Optional[str], actual: Any) -> bool:
    return compile_condition("x", value_type, operator, argument).holds({"x": actual})


@pytest.mark.parametrize(("value_type", "operator", "argument", "actual", "expected"), [
    # equals / not_equals
    ("string", "equals", "VDS", " vds ", True),
    ("string", "equals", "vds", "vhost", False),
    ("string", "equals", "vds", None, False),
    ("string", "not_equals", "vds", None, True),
    ("string", "not_equals", "vds", "VDS", False),
    ("number", "equals", "10", "10.00", True),
    ("number", "equals", "10,5", Decimal("10.5"), True),
    ("int", "equals", "2", 2, True),
    ("int", "equals", "2", "two", False),
    ("enum", "equals", "2", 2, True),
    ("date", "equals", "01.05.2024", date(2024, 5, 1), True),
    ("date", "equals", "2024-05-01", datetime(2024, 5, 1, 23, 59), True),
    ("bool", "equals", "да", True, True),
    ("bool", "equals", "false", True, False),
    ("bool", "equals", "true", None, False),
    # in_list
    ("string", "in_list", "vds, dedic\nvhost", "VHOST", True),
    ("string", "in_list", "vds,dedic", "domain", False),
    ("int", "in_list", "1,2,3", "3", True),
    ("int", "in_list", "1,2,3", None, False),
    # contains / regex
    ("string", "contains", "Example", "shop.example.com", True),
    ("string", "contains", "x", None, False),
    ("string", "contains", "x", "", False),
    ("string", "regex", r"\.(ru|рф)$", "shop.RU", True),
    ("string", "regex", r"^shop", "my-shop.ru", False),
    ("string", "regex", r".*", None, False),
    # greater / less
    ("number", "greater", "1000", Decimal("1499.5"), True),
    ("number", "greater", "1000", "999.99", False),
    ("number", "greater", "1000", "lots", False),
    ("number", "less", "1000", None, False),
    ("int", "less", "12", "3", True),
    ("date", "greater", "2024-01-01", date(2024, 5, 2), True),
    ("date", "less", "2024-01-01", "2023-12-31", True),
    ("date", "less", "2024-01-01", "not a date", False),
    # empty / not_empty
    ("string", "empty", None, None, True),
    ("string", "empty", None, "   ", True),
    ("string", "empty", None, "x", False),
    ("int", "empty", None, 0, False),
    ("string", "not_empty", None, "x", True),
    ("string", "not_empty", None, None, False),
])
def test_operator_semantics(value_type: str, operator: str, argument: Optional[str], actual: Any,
                            expected: bool) -> None:
    assert holds(value_type, operator, argument, actual) is expected


def test_missing_attribute_reads_as_none() -> None:
    check = compile_condition("absent", "string", "equals", "x")
    assert check.holds({}) is False
    assert compile_condition("absent", "string", "empty", None).holds({}) is True


@pytest.mark.parametrize(("value_type", "operator", "argument", "words"), [
    ("string", "regex", "([a-z]", "invalid regular expression"),
    ("string", "regex", "(a+)+$", "repeated group"),
    ("string", "regex", "(x*)*", "repeated group"),
    ("string", "regex", "a" * (MAX_PATTERN_LENGTH + 1), "longer than"),
    ("number", "greater", "ten", "not a valid number"),
    ("date", "less", "32.13.2024", "not a valid date"),
    ("bool", "equals", "maybe", "not a valid bool"),
    ("int", "in_list", "1, two", "not a valid int"),
    ("string", "in_list", " , ,", "needs at least one item"),
    ("string", "equals", "", "needs an argument"),
    ("string", "equals", None, "needs an argument"),
    ("string", "greater", "1", "does not apply to string"),
    ("bool", "contains", "x", "does not apply to bool"),
    ("string", "sounds_like", "x", "unknown operator"),
])
def test_unusable_arguments_are_refused_when_compiling(value_type: str, operator: str,
                                                       argument: Optional[str], words: str) -> None:
    with pytest.raises(ArgumentError, match=words):
        compile_condition("x", value_type, operator, argument)


def test_regex_subject_is_capped_so_matching_stays_bounded() -> None:
    check = compile_condition("x", "string", "regex", "needle$")
    assert check.holds({"x": "a" * 5000 + "needle"}) is False
    assert check.holds({"x": "needle"}) is True
