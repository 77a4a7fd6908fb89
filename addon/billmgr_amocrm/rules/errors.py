"""Errors of the rules layer: a bad config or presets file, a missing rule.

Every problem names where it is (the file, the path inside it such as
``values.service.domain.type``) and what is wrong, so the admin can fix it
without reading code. Messages never contain secrets: the rules files hold none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file: where (dotted path, '' = the whole file) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def join_path(parts: Iterable[Union[str, int]]) -> str:
    return ".".join(str(p) for p in parts)


class ConfigError(Exception):
    """amocrm.conf or a presets file cannot be used as it is; nothing was changed."""

    def __init__(self, file: Optional[Union[Path, str]], problems: Sequence[Problem]) -> None:
        self.file = str(file) if file is not None else None
        self.problems: Tuple[Problem, ...] = tuple(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        where = self.file or "config"
        if len(self.problems) == 1:
            return f"{where}: {self.problems[0]}"
        lines = "\n".join(f"  {p}" for p in self.problems)
        return f"{where}: {len(self.problems)} problems:\n{lines}"


class UnknownRuleError(LookupError):
    """The panel asked for a rule id that is not in the section (deleted meanwhile?)."""

    def __init__(self, section: str, rule_id: str) -> None:
        self.section = section
        self.rule_id = rule_id
        super().__init__(f"{section}: no rule with id {rule_id!r}")
