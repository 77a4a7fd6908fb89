"""Links back to BILLmanager (issue 17.4): a contact opens its client, a lead its service, in
BILLmanager's admin panel.

The link goes into the module's own url field on contacts and leads (``sync.url_field_ids``,
created like the marker fields, see ``sync/fields.py``). Like every field the module maps, it
holds what the settings give now: with no base URL (``sync.billmgr_url`` empty) the field is
cleared, and an entity created meanwhile gets none.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ..domain import Kind
from ..unverified import ADMIN_EDIT_FORMS


def admin_link(base: str, kind: Kind, billmgr_id: Any) -> Optional[str]:
    """``{base}/billmgr?startform=account.edit&elid=42`` (a client) or ``item.edit`` (a service);
    None without a base URL, for a payer, or without an id."""
    form = ADMIN_EDIT_FORMS.get(kind.value)
    if not base or form is None or billmgr_id is None:
        return None
    return f"{base}/billmgr?startform={form}&elid={int(billmgr_id)}"


def link_field(field_id: Optional[int], base: str, kind: Kind, billmgr_id: Any) -> Optional[Dict[str, Any]]:
    """The url field's entry of a body: the link, or its clearing (``"values": None``) when there is
    no base URL; None when the field does not exist (yet)."""
    if not field_id:
        return None
    link = admin_link(base, kind, billmgr_id)
    return {"field_id": field_id, "values": [{"value": link}] if link else None}
