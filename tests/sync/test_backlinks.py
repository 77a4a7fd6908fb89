"""Contacts and leads link back to BILLmanager's admin panel (issue 17, point 4).

Against MariaDB (sandbox) and the emulator, through the real module: the url fields are created
(API-only, one per contacts and leads) once a base URL is set, hold the client's and the service's
link, and are cleared when the base URL is; a module that never had one creates no field.
"""

from __future__ import annotations

from typing import Any, Optional

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.rules.config import rebuild
from billmgr_amocrm.settings import update_config
from billmgr_amocrm.sync.fields import URL_FIELD_CODE

from .test_mirror import exported, shown, values_of

BASE = "https://billing.example.com"


def set_base_url(rig: Any, url: str) -> None:
    """What the Integration settings form saves."""
    update_config(rig.app.paths, lambda current: rebuild(
        current.config, {"sync": {**current.config.sync.model_dump(mode="json"), "billmgr_url": url}}))
    rig.app.reload_rules()


def url_field(rig: Any, entity: str) -> Optional[dict[str, Any]]:
    return next((f for f in rig.app.amo().custom_fields(entity) if f.get("code") == URL_FIELD_CODE), None)


def test_without_a_base_url_no_field_is_made_or_written(rig: Any) -> None:
    account = rig.sandbox.add_client(name="Без ссылки", email="nolink@example.ru").account_id
    item = rig.sandbox.open_service(account)
    exported(rig)
    assert url_field(rig, "contacts") is None and url_field(rig, "leads") is None
    assert rig.app.config.sync.url_field_ids.as_map() == {}
    assert shown(rig, Kind.LEAD, item)["name"]


def test_contacts_and_leads_link_to_their_client_and_service_and_a_cleared_base_clears_them(rig: Any) -> None:
    set_base_url(rig, BASE + "/billmgr")            # normalized: the links add /billmgr themselves
    account = rig.sandbox.add_client(name="Ссылка", email="link@example.ru").account_id
    item = rig.sandbox.open_service(account)
    exported(rig)
    contacts, leads = url_field(rig, "contacts"), url_field(rig, "leads")
    assert contacts and leads and contacts["type"] == leads["type"] == "url"
    assert contacts["is_api_only"] and leads["is_api_only"]
    assert url_field(rig, "companies") is None                     # a payer has no page of its own here
    ids = rig.app.config.sync.url_field_ids
    assert (ids.contact, ids.lead) == (contacts["id"], leads["id"])   # recorded in amocrm.conf
    assert values_of(shown(rig, Kind.CONTACT, account), contacts["id"]) == [
        f"{BASE}/billmgr?startform=account.edit&elid={account}"]
    assert values_of(shown(rig, Kind.LEAD, item), leads["id"]) == [
        f"{BASE}/billmgr?startform=item.edit&elid={item}"]
    # entities linked before the base URL was set get theirs at the daily recheck (or a resync)
    # the base URL cleared: the links are cleared too (a field the module maps holds what it gives now)
    set_base_url(rig, "")
    queued = service.reconcile(app=rig.app, full=True)
    assert queued["contact"] >= 1 and queued["lead"] >= 1
    exported(rig)
    assert values_of(shown(rig, Kind.CONTACT, account), contacts["id"]) is None
    assert values_of(shown(rig, Kind.LEAD, item), leads["id"]) is None
    # set again: the fields are found, not made twice
    set_base_url(rig, "https://new.example.com")
    service.reconcile(app=rig.app, full=True)
    exported(rig)
    assert [f["id"] for f in rig.app.amo().custom_fields("leads") if f.get("code") == URL_FIELD_CODE] == \
        [leads["id"]]
    assert values_of(shown(rig, Kind.LEAD, item), leads["id"]) == [
        f"https://new.example.com/billmgr?startform=item.edit&elid={item}"]
