"""Settling creates that may have reached amoCRM: look our marker up before creating again.

An intent row without a link means a POST was sent and its answer never made it
into our tables (timeout, lost response, crash before the commit). The entity may
exist in amoCRM. ``find_by_marker`` pages the entities created since the intent
(minus a margin for clock skew) instead of trusting the lagging search index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping

from ..domain import Kind
from ..foundation.clock import as_utc
from ..ports import AmoApi, marker_value

# Our clock and amoCRM's may disagree; look a little further back than the intent.
CLOCK_SKEW_MARGIN_SECONDS = 600


def settle_by_marker(amo: AmoApi, kind: Kind, marker_field_id: int,
                     intents: Mapping[int, datetime]) -> dict[int, int]:
    """billmgr_id -> amoCRM id for the intents whose entity already exists in amoCRM."""
    if not intents:
        return {}
    by_marker = {marker_value(kind, billmgr_id): billmgr_id for billmgr_id in intents}
    oldest = min(as_utc(moment) for moment in intents.values())
    since = int(oldest.timestamp()) - CLOCK_SKEW_MARGIN_SECONDS
    found = amo.find_by_marker(kind.amo_entity, marker_field_id, sorted(by_marker), created_since=since)
    return {by_marker[marker]: amo_id for marker, amo_id in found.items() if marker in by_marker}
