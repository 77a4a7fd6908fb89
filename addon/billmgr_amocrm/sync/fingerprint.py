"""A fingerprint of what was sent for an entity, so an unchanged re-check sends nothing."""

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
