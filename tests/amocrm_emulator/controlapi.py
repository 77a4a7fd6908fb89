"""The control API (``/_emulator/…``): JSON in and out, no auth, no rate limit, not logged.

The caller holds the state lock and the gateway lock, so a control call sees and changes
everything atomically. ``README.md`` lists the endpoints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from .listing import first
from .state import DELETED_PATCH_MODES, ENTITY_TYPES, State

if TYPE_CHECKING:
    from .server import Emulator

Reply = Tuple[int, Any]
USER_SWITCHES = ("deactivate", "activate")


def dispatch(emu: Emulator, method: str, name: str, query: Dict[str, List[str]], body: Any) -> Reply:
    parts = name.split("/")
    if (method, name) == ("GET", "state"):
        return 200, emu.full_state()
    if (method, name) == ("GET", "requests"):
        return 200, emu.log.since(int(first(query, "since") or 0))
    if (method, name) == ("GET", "rate_stats"):
        return 200, emu.rate_stats(float(first(query, "window") or 1.0))
    if (method, name) == ("POST", "reset"):
        emu.reset()
        return 200, {"integration": emu.integration}
    if (method, name) == ("POST", "clock"):
        if "advance" in body:
            emu.clock.advance(float(body["advance"]))
        if "set" in body:
            emu.clock.set(float(body["set"]))
        return 200, {"now": emu.clock.now(), "offset": emu.clock.offset}
    if parts[0] in ("integration", "auth_code", "tokens", "long_lived_token") and method == "POST":
        return _oauth(emu, name, body)
    if name == "faults":
        return _faults(emu, method, body)
    if (method, name) == ("POST", "revoke_token"):
        return 200, {"revoked": emu.oauth.revoke(str(body.get("token") or ""))}
    if (method, name) == ("POST", "delete"):
        return _delete(emu, body)
    if (method, name) == ("POST", "edit"):
        return _edit(emu, body)
    if method == "POST" and len(parts) == 3 and parts[0] == "users" and parts[2] in USER_SWITCHES:
        user = emu.state.users.get(int(parts[1]))
        if user is None:
            return 404, {"error": "no such user"}
        user["rights"]["is_active"] = parts[2] == "activate"
        return 200, user
    if (method, name) == ("POST", "rate"):
        emu.limiter.configure(body)
        return 200, emu.limiter.to_json()
    if (method, name) == ("POST", "block"):
        emu.limiter.block(body.get("reason", "manual"))
        return 200, emu.limiter.to_json()
    if (method, name) == ("POST", "unblock"):
        emu.limiter.unblock()
        return 200, emu.limiter.to_json()
    if (method, name) == ("POST", "account"):
        if "paid" in body:
            emu.state.paid = bool(body["paid"])
        return 200, {"paid": emu.state.paid}
    if (method, name) == ("POST", "settings"):
        return 200, _settings(emu, body)
    return 404, {"error": f"unknown control endpoint {method} /_emulator/{name}"}


def _oauth(emu: Emulator, name: str, body: Any) -> Reply:
    if name == "integration":
        integration = emu.state.add_integration(
            body.get("redirect_uri", emu.options.redirect_uri),
            body.get("client_id"),
            body.get("client_secret"),
        )
        return 200, dict(integration, auth_code=emu.oauth.new_auth_code(integration["client_id"]))
    client_id = body.get("client_id") or emu.integration["client_id"]
    if client_id not in emu.state.integrations:
        raise ValueError("unknown client_id")
    if name == "auth_code":
        return 200, {"client_id": client_id, "auth_code": emu.oauth.new_auth_code(client_id)}
    if name == "tokens":
        return 200, emu.oauth.issue_pair(client_id)
    if name == "long_lived_token":
        return 200, emu.oauth.issue_long_lived(client_id, int(body.get("seconds") or 365 * 86400))
    return 404, {"error": f"unknown control endpoint POST /_emulator/{name}"}


def _faults(emu: Emulator, method: str, body: Any) -> Reply:
    if method == "GET":
        return 200, emu.faults.to_json()
    if method == "DELETE":
        emu.faults.clear()
        return 200, []
    if method != "POST":
        return 405, {"error": "use GET, POST or DELETE"}
    if isinstance(body, dict) and "seed" in body:
        emu.faults.seed(int(body.pop("seed")))
        if not body:
            return 200, emu.faults.to_json()
    specs = body if isinstance(body, list) else [body]
    return 200, [emu.faults.add(dict(spec)).to_json() for spec in specs]


def _delete(emu: Emulator, body: Any) -> Reply:
    """Deletion "in the UI": contacts, companies and leads, notes and tasks, a custom field
    (``entity_type`` names its entity), a pipeline or a status (``pipeline_id`` names its pipeline)."""
    entity, entity_id = body["entity"], int(body["id"])
    if entity in ENTITY_TYPES:
        deleted = emu.store.mark_deleted(entity, entity_id)
    elif entity in ("notes", "tasks"):
        deleted = emu.api.mark_deleted(entity, entity_id)
    elif entity == "custom_fields":
        deleted = _delete_field(emu.state, str(body.get("entity_type")), entity_id)
    elif entity in ("pipelines", "statuses"):
        deleted = _delete_stage(emu.state, entity, entity_id, body.get("pipeline_id"))
    else:
        deleted = False
    if not deleted:
        return 404, {"error": f"no {entity} {entity_id}"}
    emu.mark_dirty()
    return 200, {"deleted": {"entity": entity, "id": entity_id}}


def _edit(emu: Emulator, body: Any) -> Reply:
    """A person edits a custom field "in the UI": refused (403) for an API-only field."""
    entity = body["entity"]
    if entity not in ENTITY_TYPES:
        return 404, {"error": f"unknown entity {entity}"}
    refused = emu.store.edit_by_hand(entity, int(body["id"]), int(body["field_id"]), body.get("value"),
                                     emu.clock.now())
    if refused:
        return 403 if "API only" in refused else 404, {"error": refused}
    emu.mark_dirty()
    return 200, {"edited": {"entity": entity, "id": int(body["id"]), "field_id": int(body["field_id"])}}


def _delete_field(state: State, entity: str, field_id: int) -> bool:
    """A custom field deleted in the UI: gone from the catalog and from every record's values.
    Predefined fields (PHONE, EMAIL, ...) cannot be deleted."""
    field = state.custom_fields.get(entity, {}).get(field_id)
    if field is None or not field["is_deletable"]:
        return False
    del state.custom_fields[entity][field_id]
    state.invalidate_field_codes(entity)
    for record in state.entities[entity].values():
        kept = [cf for cf in record["custom_fields_values"] or [] if cf["field_id"] != field_id]
        record["custom_fields_values"] = kept or None
    return True


def _delete_stage(state: State, what: str, item_id: int, pipeline_id: Any) -> bool:
    """A pipeline (not the main one) or an editable status deleted in the UI; leads keep their ids."""
    if what == "pipelines":
        pipeline = state.pipelines.get(item_id)
        if pipeline is None or pipeline["is_main"]:
            return False
        del state.pipelines[item_id]
        return True
    pipeline = state.pipelines.get(int(pipeline_id)) if pipeline_id is not None else None
    status = state.status(int(pipeline_id), item_id) if pipeline is not None else None
    if pipeline is None or status is None or not status["is_editable"]:
        return False
    pipeline["statuses"] = [s for s in pipeline["statuses"] if s["id"] != item_id]
    return True


def _settings(emu: Emulator, body: Dict[str, Any]) -> Dict[str, Any]:
    mode = body.get("deleted_patch_mode", emu.state.deleted_patch_mode)
    if mode not in DELETED_PATCH_MODES:
        raise ValueError(f"deleted_patch_mode must be one of {DELETED_PATCH_MODES}")
    emu.latency.configure(body)  # validates every range before changing anything
    if "search_lag" in body:
        emu.state.search_lag = float(body["search_lag"])
    emu.state.deleted_patch_mode = mode
    return dict(
        {"search_lag": emu.state.search_lag, "deleted_patch_mode": emu.state.deleted_patch_mode},
        **emu.latency.to_json(),
    )
