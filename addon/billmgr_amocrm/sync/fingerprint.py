"""A fingerprint of what was sent for an entity, so an unchanged re-check sends nothing.

It covers the body as an update sends it (every owned field, clearings included; a
create sends the same state, its clearings being no-ops on a new entity), the tags and
the parent links. A lead's placement (pipeline and status) is not in it: that is sent
only on a create and with a service event, never kept in step, so a re-check after
either compares equal and sends nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

from ..ports import AmoPayload
from .planner import Link


def fingerprint(payload: AmoPayload, parents: Sequence[Link] = ()) -> str:
    """What was sent: owned fields, tags and the parent links (a lead created before its
    contact existed differs from one linked to it, so a re-check re-links it)."""
    linked = sorted((p.to_entity, p.to_entity_id) for p in parents)
    text = json.dumps([payload.body, list(payload.tags), linked], sort_keys=True, default=str,
                      ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
