"""The tags the module's rules have given (``amocrm_given_tag``), per kind, with when each left
the rules; the policy of what stays the module's is :mod:`..sync.given_tags`."""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Sequence

from ..domain import Kind
from ..foundation.clock import from_db
from .queries import sql
from .unit_of_work import UnitOfWork


class GivenTags(UnitOfWork):
    """The given tags' part of ``MySqlStore``."""

    def note_given_tags(self, current: Mapping[Kind, Sequence[str]]
                        ) -> dict[Kind, dict[str, datetime | None]]:
        """The rules give ``current`` now: note them, stamp the others of each kind retired (once),
        and return every tag ever given, name -> when it left the rules (None: in them now)."""
        given: dict[Kind, dict[str, datetime | None]] = {}
        with self.transaction():
            now = self._now()
            for kind, names in current.items():
                rows = {str(r[0]): from_db(r[1]) for r in self._rows(sql("given_tags"), (kind.value,))}
                wanted = set(names)
                for name in sorted(wanted):
                    if name not in rows or rows[name] is not None:
                        self._exec(sql("give_tag"), (kind.value, name))
                    rows[name] = None
                for name, retired in rows.items():
                    if name not in wanted and retired is None:
                        self._exec(sql("retire_tag"), (now, kind.value, name))
                        rows[name] = from_db(now)
                given[kind] = rows
        return given
