"""The store's named SQL (``queries.sql``), and the only ways to fill its variable parts.

``queries.sql`` holds every statement once, as ``-- name: <query_name>`` blocks with a
one-line description; :func:`sql` returns a statement's text, read and parsed once per
process on first use. Values are always bound parameters (``%s``). A ``{slot}`` in a
statement (an IN list, the rows of a multi-row VALUES, a link table, an optional
clause) takes a :data:`Fragment`, and a Fragment is made only here, from fixed text or
a count: :func:`marks`, :func:`rows`, :func:`fragment`, :func:`joined`,
:func:`link_table`, :data:`NOTHING`. Input never becomes SQL text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Iterable, Mapping, NewType

from ..domain import Kind

Fragment = NewType("Fragment", str)
NOTHING = Fragment("")
SEPARATORS = (" OR ", " UNION ALL ")

_PACKAGE = __name__.rpartition(".")[0]
_NAME = re.compile(r"^-- name: (\w+)\s*$")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    text: str                   # the SQL, notes removed
    slots: frozenset[str]       # the {slot}s in the text

    def render(self, fill: Mapping[str, Fragment]) -> str:
        if set(fill) != self.slots:
            raise KeyError(f"query {self.name!r} has slots {sorted(self.slots)}, given {sorted(fill)}")
        return self.text.format_map(fill) if fill else self.text


def parse(source: str) -> dict[str, Query]:
    """``-- name:`` blocks -> queries. Lines before the first name are the file's preamble;
    in a block, the first ``--`` line is the description and the other ``--`` lines are notes."""
    found: dict[str, Query] = {}
    name: str | None = None
    lines: list[str] = []

    def close() -> None:
        if name is None:
            return
        comments = [line for line in lines if line.lstrip().startswith("--")]
        body = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
        if not comments or not body:
            raise ValueError(f"query {name!r} needs a one-line description and a statement")
        found[name] = Query(name, comments[0].lstrip()[2:].strip(), body.rstrip(";").rstrip(),
                            frozenset(_SLOT.findall(body)))

    for line in source.splitlines():
        match = _NAME.match(line)
        if match is None:
            lines.append(line)
            continue
        close()
        name, lines = match.group(1), []
        if name in found:
            raise ValueError(f"query {name!r} is defined twice")
    close()
    return found


@cache
def catalog() -> Mapping[str, Query]:
    """Every named query of ``queries.sql`` (package data), parsed once."""
    return parse(resources.files(_PACKAGE).joinpath("queries.sql").read_text(encoding="utf-8"))


def sql(name: str, **fill: Fragment) -> str:
    """The statement ``name``, its slots (if any) filled with fragments."""
    return catalog()[name].render(fill)


def fragment(name: str, **fill: Fragment) -> Fragment:
    """A named piece of a statement (an optional clause, one row of VALUES) as a fragment."""
    return Fragment(sql(name, **fill))


def marks(count: int) -> Fragment:
    """``%s, %s, ...``: one bound value per item of an IN list."""
    if count < 1:
        raise ValueError("an IN list needs at least one value")
    return Fragment(", ".join(["%s"] * count))


def rows(row: str, count: int) -> Fragment:
    """The named row template ``count`` times: the VALUES of one multi-row statement."""
    if count < 1:
        raise ValueError("VALUES needs at least one row")
    return Fragment(", ".join([sql(row)] * count))


def joined(parts: Iterable[Fragment], separator: str) -> Fragment:
    """Fragments joined by one of the fixed ``SEPARATORS``."""
    if separator not in SEPARATORS:
        raise ValueError(f"unknown separator {separator!r}")
    return Fragment(separator.join(parts))


def link_table(kind: Kind) -> Fragment:
    """The link table of a kind: a fixed name from the domain's allowlist."""
    return Fragment(kind.link_table)
