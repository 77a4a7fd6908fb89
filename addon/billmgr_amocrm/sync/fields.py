"""The module's "BILLmanager ID" marker fields on contacts, companies and leads.

Every entity the module creates carries ``ports.marker_value(kind, id)`` in this
text field; it is how an unanswered create is found again (see :mod:`.settle`).
The field ids are recorded in amocrm.conf (``sync.marker_field_ids``).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from ..domain import KIND_ORDER, Kind
from ..ports import AmoApi

log = logging.getLogger(__name__)

MARKER_FIELD_NAME = "BILLmanager ID"
MARKER_FIELD_CODE = "BILLMGR_ID"


def _find(catalog: list[dict[str, Any]]) -> Optional[int]:
    for field in catalog:
        if field.get("code") == MARKER_FIELD_CODE:
            return int(field["id"])
    for field in catalog:
        if field.get("name") == MARKER_FIELD_NAME and field.get("type") == "text":
            return int(field["id"])
    return None


def ensure_marker_fields(amo: AmoApi) -> dict[Kind, int]:
    """Find or create the marker field of each entity type; the caller records the ids (amocrm.conf)."""
    ids: dict[Kind, int] = {}
    for kind in KIND_ORDER:
        field_id = _find(amo.custom_fields(kind.amo_entity))
        if field_id is None:
            made = amo.create_custom_fields(kind.amo_entity, [{
                "name": MARKER_FIELD_NAME, "type": "text", "code": MARKER_FIELD_CODE, "sort": 10000}])
            field_id = int(made[0]["id"])
            log.info("created the %r field on %s (id %s)", MARKER_FIELD_NAME, kind.amo_entity, field_id)
        ids[kind] = field_id
    return ids
