"""The text of the module's JSON files -> pydantic models, with errors that point (pure).

The files are read by ``settings`` (the adapter); what it hands over is a
:class:`Document`: the text and the file's path. Every failure becomes a
``ConfigError`` naming the file, the dotted path inside it and the problem: JSON
syntax (with line and column), duplicate keys (JSON allows them, and the
silently-lost first value is a classic config bug), and schema violations
reported by pydantic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Tuple, Type, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, Problem, join_path

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Document:
    """One JSON file as read: its path (named in every error) and its text."""

    source: str
    text: str

    def data(self) -> Any:
        return parse_json_text(self.text, self.source)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKeyError(key)
        seen[key] = value
    return seen


def parse_json_text(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKeyError as exc:
        raise ConfigError(source, [Problem("", f"key {exc.args[0]!r} appears twice in one object")]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(source, [Problem(
            "", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None


def validation_problems(exc: ValidationError, prefix: Tuple[Any, ...] = ()) -> List[Problem]:
    """pydantic's errors as (dotted path, message) pairs an admin can act on."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [part for part in (*prefix, *err["loc"]) if part != "[key]"]
        problems.append(Problem(join_path(loc), err["msg"]))
    return problems


def model_from(model: Type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None
