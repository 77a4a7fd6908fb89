"""Tags the module gave stay its own to take off for a while after their rule is gone.

A tag rule deleted, or its tag renamed, leaves the old tag on every entity it was given to.
The worker takes off only the tags it manages, and those were the tags of the rules as they
are now, so such a tag stayed for good: amoCRM went on showing "abuse" on services long
resumed, beside tags people add by hand that the module must never touch. So the module
notes every tag its rules give (``amocrm_given_tag``, in the database: every host and
process that sends sees it), and a tag that left the rules stays managed, taken off where
the rules no longer give it, for ``KEEP_RETIRED``. The re-check a settings change starts
(``sync/reconcile.py``) queues every entity that had it at once, so it comes off within
the next passes; after that the name is forgotten and becomes a name managers may use by
hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from ..domain import KIND_ORDER, Kind
from ..foundation.clock import as_utc
from ..store.tags import GivenTags

KEEP_RETIRED = timedelta(days=30)


class TagRules(Protocol):
    def managed_tags(self, kind: Kind) -> tuple[str, ...]: ...


def retired_tags(store: GivenTags, rules: TagRules, now: datetime) -> dict[Kind, tuple[str, ...]]:
    """Note the tags the rules give now; the tags given before that still are the module's to
    take off (left the rules less than ``KEEP_RETIRED`` ago), per kind."""
    given = store.note_given_tags({kind: rules.managed_tags(kind) for kind in KIND_ORDER})
    keep_since = as_utc(now) - KEEP_RETIRED
    return {kind: tuple(sorted(name for name, retired in names.items()
                               if retired is not None and as_utc(retired) >= keep_since))
            for kind, names in given.items()}
