"""The module's "BILLmanager ID" marker fields on contacts, companies and leads.

Every entity the module creates carries ``ports.marker_value(kind, id)`` in this
text field; it is how an unanswered create is found again (see :mod:`.settle`).
The field ids are recorded in amocrm.conf (``sync.marker_field_ids``). The url fields that
link contacts and leads back to BILLmanager (``sync.url_field_ids``) are made the same way,
once a base URL is set (:func:`ensure_url_fields`).

A marker someone changes by hand in amoCRM breaks that (a lookup misses, a create
repeats), so the fields are API-only (``is_api_only``: amoCRM's UI cannot change them):
created so, and an existing field that is not is changed to it, when the module is
authorized and by ``amocrm check`` (:func:`secure_marker_fields`), which reports a field
it could not change.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Mapping, Optional

from ..domain import KIND_ORDER, URL_KINDS, Kind
from ..errors import FixData
from ..foundation.clock import utcnow
from ..ports import AmoApi, Store

log = logging.getLogger(__name__)

MARKER_FIELD_NAME = "BILLmanager ID"
MARKER_FIELD_CODE = "BILLMGR_ID"
# the link back to the client / the service in BILLmanager's admin panel (rules/backlinks.py)
URL_FIELD_NAME = "BILLmanager"
URL_FIELD_CODE = "BILLMGR_URL"


def _find(catalog: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    for field in catalog:
        if field.get("code") == MARKER_FIELD_CODE:
            return field
    for field in catalog:
        if field.get("name") == MARKER_FIELD_NAME and field.get("type") == "text":
            return field
    return None


def ensure_marker_fields(amo: AmoApi) -> dict[Kind, int]:
    """Find or create the marker field of each entity type (API-only); the caller records the ids
    (amocrm.conf). An existing field that is not API-only is made so where amoCRM allows it."""
    return set_up_marker_fields(amo)[0]


def set_up_marker_fields(amo: AmoApi) -> tuple[dict[Kind, int], frozenset[Kind]]:
    """:func:`ensure_marker_fields`, and the kinds whose field was made now: no entity can carry
    those yet, while a field found may already be on entities a former install made
    (``sync/adopt.py``)."""
    ids: dict[Kind, int] = {}
    made: set[Kind] = set()
    for kind in KIND_ORDER:
        field = _find(amo.custom_fields(kind.amo_entity))
        if field is None:
            created = amo.create_custom_fields(kind.amo_entity, [{
                "name": MARKER_FIELD_NAME, "type": "text", "code": MARKER_FIELD_CODE, "sort": 10000,
                "is_api_only": True}])
            field = created[0]
            made.add(kind)
            log.info("created the %r field on %s (id %s)", MARKER_FIELD_NAME, kind.amo_entity, field["id"])
        else:
            _make_api_only(amo, kind, field)
        ids[kind] = int(field["id"])
    return ids, frozenset(made)


def ensure_url_fields(amo: AmoApi) -> dict[Kind, int]:
    """Find or create the url field linking contacts and leads back to BILLmanager (issue 17.4),
    as the marker fields are: by code, else by name and type; API-only, since the module
    writes it and a hand-edited link would only be overwritten. The caller records the ids."""
    ids: dict[Kind, int] = {}
    for kind in URL_KINDS:
        catalog = amo.custom_fields(kind.amo_entity)
        field = next((f for f in catalog if f.get("code") == URL_FIELD_CODE), None) or next(
            (f for f in catalog if f.get("name") == URL_FIELD_NAME and f.get("type") == "url"), None)
        if field is None:
            field = amo.create_custom_fields(kind.amo_entity, [{
                "name": URL_FIELD_NAME, "type": "url", "code": URL_FIELD_CODE, "sort": 10001,
                "is_api_only": True}])[0]
            log.info("created the %r url field on %s (id %s)", URL_FIELD_NAME, kind.amo_entity, field["id"])
        ids[kind] = int(field["id"])
    return ids


def secure_marker_fields(amo: AmoApi, ids: Mapping[Kind, int]) -> list[str]:
    """Make the known marker fields API-only where they are not; what is still wrong, in words."""
    problems: list[str] = []
    for kind in KIND_ORDER:
        field_id = ids.get(kind)
        if field_id is None:
            continue
        field = next((f for f in amo.custom_fields(kind.amo_entity) if f.get("id") == field_id), None)
        if field is None:
            problems.append(f"the {MARKER_FIELD_NAME!r} field of {kind.amo_entity} (id {field_id}) is gone "
                            "from amoCRM: authorize the module again to create it")
            continue
        problem = _make_api_only(amo, kind, field)
        if problem:
            problems.append(problem)
    return problems


def _make_api_only(amo: AmoApi, kind: Kind, field: Mapping[str, Any]) -> str:
    """Change a marker field to API-only if it is not; '' when it is, else why it could not be."""
    if field.get("is_api_only"):
        return ""
    try:
        amo.update_custom_fields(kind.amo_entity, [{"id": int(field["id"]), "is_api_only": True}])
    except FixData as exc:
        problem = (f"the {MARKER_FIELD_NAME!r} field of {kind.amo_entity} (id {field['id']}) can be "
                   f"changed by people in amoCRM, and amoCRM refused to make it API-only: {exc}; make it "
                   "API-only in amoCRM's field settings")
        log.warning("%s", problem)
        return problem
    log.info("made the %r field of %s (id %s) API-only", MARKER_FIELD_NAME, kind.amo_entity, field["id"])
    return ""


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
