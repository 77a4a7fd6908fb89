"""The module's "BILLmanager ID" marker fields on contacts, companies and leads.

Every entity the module creates carries ``ports.marker_value(kind, id)`` in this
text field; it is how an unanswered create is found again (see :mod:`.settle`).
The field ids are recorded in amocrm.conf (``sync.marker_field_ids``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Optional

from ..domain import KIND_ORDER, Kind
from ..errors import FixData
from ..foundation.clock import utcnow
from ..ports import AmoApi, Store

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


# far enough ahead that every pending row is due by then, whatever its backoff
_EVERY_PENDING = timedelta(days=36500)


def fail_pending(store: Store, refusal: FixData) -> int:
    """amoCRM refused to set the marker fields up: every pending record fails with its words.

    Nothing can be synced without them, and the same request would be refused again; an
    admin who fixed the cause in amoCRM retries the failed records (a new event revives
    its record too)."""
    reason = f"amoCRM refused to set up the {MARKER_FIELD_NAME!r} fields: {refusal}"
    log.error("%s; every pending record fails until it is fixed in amoCRM", reason)
    failed = 0
    horizon = utcnow() + _EVERY_PENDING
    for kind in KIND_ORDER:
        with store.transaction():
            for item in store.claim_after(kind, 1_000_000, horizon, None):
                store.fail(item, reason)
                failed += 1
    return failed
