"""Notes of contacts, companies and leads (amoCRM "примечания", events-and-notes API).

Routes, for ``{entity}`` in contacts|companies|leads::

    POST /api/v4/{entity}/notes                [{entity_id, note_type, params, request_id?, ...}]
    POST /api/v4/{entity}/{id}/notes           [{note_type, params, ...}]  (entity_id from the path)
    GET  /api/v4/{entity}/notes                filter[entity_id][], filter[id][], filter[note_type][],
                                               filter[updated_at] (or [from]/[to]), order[id|updated_at]
    GET  /api/v4/{entity}/{id}/notes           the same, for one entity
    GET  /api/v4/{entity}/notes/{note_id}      and /api/v4/{entity}/{id}/notes/{note_id} (its self link)

Read shape: ``id, entity_id, created_by, updated_by, created_at, updated_at,
responsible_user_id, group_id, note_type, params, account_id, _links``. A create answers
``_embedded.notes[{id, entity_id, request_id, _links}]``. Notes of a UI-deleted entity are
gone from every read, like the entity (README, Decisions).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .checks import (
    NOT_BLANK,
    NOT_SUPPORTED,
    Checked,
    ItemCheck,
    batch_items,
    check_all,
    check_users,
    int_fields,
    is_int,
    request_id_of,
    required_text,
    unexpected_keys,
)
from .listing import Lister, Params, Result, Routes, bracket_values, in_range, int_values, ordered, time_range
from .state import State

# note_type → its params, all required non-blank strings.
NOTE_PARAMS: Dict[str, Tuple[str, ...]] = {
    "common": ("text",),
    "service_message": ("service", "text"),
    "extended_service_message": ("service", "text"),
}
WRITE_KEYS = frozenset(
    {
        "entity_id",
        "note_type",
        "params",
        "request_id",
        "id",  # ignored on create, as for entities
        "responsible_user_id",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "is_need_to_trigger_digital_pipeline",
    }
)
INT_KEYS = ("responsible_user_id", "created_by", "updated_by", "created_at", "updated_at")


class Notes(Routes):
    def __init__(self, state: State, lister: Lister, base: str) -> None:
        super().__init__(state, lister, base)
        # Per entity type and per entity: note ids in creation (= id) order.
        self._by_type: Dict[str, List[int]] = {}
        self._by_entity: Dict[Tuple[str, int], List[int]] = {}
        for note in sorted(state.notes.values(), key=lambda n: n["id"]):
            self._index(note)

    def _index(self, note: Dict[str, Any]) -> None:
        entity = note["_entity_type"]
        self._by_type.setdefault(entity, []).append(note["id"])
        self._by_entity.setdefault((entity, note["entity_id"]), []).append(note["id"])

    # --- writes ----------------------------------------------------------------
    def create(self, entity: str, params: Params, body: Any, now: float) -> Result:
        return self._create(entity, None, body, now)

    def create_for(self, entity: str, entity_id: int, params: Params, body: Any, now: float) -> Result:
        return self._create(entity, entity_id, body, now)

    def _create(self, entity: str, fixed_id: Optional[int], body: Any, now: float) -> Result:
        valid = check_all(
            batch_items(body), lambda item, n, check: self._validate(entity, fixed_id, item, n, check)
        )
        out = []
        for rid, valid_note in valid:
            note = self._store(entity, valid_note, now)
            link = self._link(note)
            out.append({"id": note["id"], "entity_id": note["entity_id"], "request_id": rid, "_links": link})
        path = f"/api/v4/{entity}/notes" if fixed_id is None else f"/api/v4/{entity}/{fixed_id}/notes"
        return 200, {"_links": {"self": {"href": self.base + path}}, "_embedded": {"notes": out}}

    def _validate(
        self, entity: str, fixed_id: Optional[int], item: Any, index: int, check: ItemCheck
    ) -> Checked[Tuple[str, Dict[str, Any]]]:
        if not isinstance(item, dict):
            check.invalid_type(str(index), "object")
            return str(index), None, (str(index), {})
        rid = request_id_of(item, index, check)
        unexpected_keys(item, WRITE_KEYS, check)
        entity_id = fixed_id if fixed_id is not None else item.get("entity_id")
        if entity_id is None:
            check.add(NOT_BLANK, "entity_id")
        elif not is_int(entity_id):
            check.invalid_type("entity_id", "int")
        elif self.state.live(entity, entity_id) is None:
            check.add(NOT_SUPPORTED, "entity_id")  # unknown, or deleted in the UI
        note_type = item.get("note_type")
        params = item.get("params")
        if note_type is None:
            check.add(NOT_BLANK, "note_type")
        elif note_type not in NOTE_PARAMS:
            check.add(NOT_SUPPORTED, "note_type")
        elif params is not None and not isinstance(params, dict):
            check.invalid_type("params", "object")
        else:
            params = params or {}
            for key in NOTE_PARAMS[note_type]:
                required_text(params, key, check, f"params.{key}")
            unexpected_keys(params, NOTE_PARAMS[note_type], check, "params.")
        trigger = item.get("is_need_to_trigger_digital_pipeline")
        if trigger is not None and not isinstance(trigger, bool):
            check.invalid_type("is_need_to_trigger_digital_pipeline", "bool")
        scalars = int_fields(item, INT_KEYS, check)
        check_users(self.state, scalars, check)
        return rid, None, (rid, {"entity_id": entity_id, "note_type": note_type, "params": params, **scalars})

    def _store(self, entity: str, valid: Dict[str, Any], now: float) -> Dict[str, Any]:
        user = self.state.account["current_user_id"]
        created_at = valid.get("created_at", int(now))
        note = {
            "id": self.state.new_id("note"),
            "entity_id": valid["entity_id"],
            "created_by": valid.get("created_by", user),
            "updated_by": valid.get("updated_by", user),
            "created_at": created_at,
            "updated_at": valid.get("updated_at", created_at),
            "responsible_user_id": valid.get("responsible_user_id", user),
            "group_id": 0,
            "note_type": valid["note_type"],
            "params": dict(valid["params"]),
            "account_id": self.state.account["id"],
            "_entity_type": entity,
            "_deleted": False,
        }
        self.state.notes[note["id"]] = note
        self._index(note)
        return note

    def mark_deleted(self, note_id: int) -> bool:
        note = self.state.notes.get(note_id)
        if note is None:
            return False
        note["_deleted"] = True
        return True

    # --- reads -----------------------------------------------------------------
    def _visible(self, note: Dict[str, Any]) -> bool:
        return not note["_deleted"] and self.state.live(note["_entity_type"], note["entity_id"]) is not None

    def _link(self, note: Dict[str, Any]) -> Dict[str, Any]:
        href = f"{self.base}/api/v4/{note['_entity_type']}/{note['entity_id']}/notes/{note['id']}"
        return {"self": {"href": href}}

    def render(self, note: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in note.items() if not k.startswith("_")}
        out["params"] = dict(note["params"])
        out["_links"] = self._link(note)
        return out

    def list(self, entity: str, params: Params, body: Any, now: float) -> Result:
        entity_ids = int_values(params, "filter[entity_id]")
        if entity_ids:
            ids = [i for e in entity_ids for i in self._by_entity.get((entity, e), ())]
        else:
            ids = self._by_type.get(entity, [])
        return self._list(entity, f"/api/v4/{entity}/notes", ids, params)

    def list_for(self, entity: str, entity_id: int, params: Params, body: Any, now: float) -> Result:
        ids = self._by_entity.get((entity, entity_id), [])
        return self._list(entity, f"/api/v4/{entity}/{entity_id}/notes", ids, params)

    def _list(self, entity: str, path: str, ids: List[int], params: Params) -> Result:
        wanted_ids = set(int_values(params, "filter[id]"))
        types = set(bracket_values(params, "filter[note_type]"))
        updated = time_range(params, "updated_at")
        notes = [
            note
            for note in (self.state.notes[i] for i in ids)
            if self._visible(note)
            and (not wanted_ids or note["id"] in wanted_ids)
            and (not types or note["note_type"] in types)
            and in_range(note["updated_at"], updated)
        ]
        notes = ordered(notes, params, ("updated_at", "id"))
        return self.lister.listing("notes", path, params, notes, self.render)

    def get(self, entity: str, note_id: int, params: Params, body: Any, now: float) -> Result:
        note = self.state.notes.get(note_id)
        if note is None or note["_entity_type"] != entity or not self._visible(note):
            return 204, None
        return 200, self.render(note)

    def get_for(
        self, entity: str, entity_id: int, note_id: int, params: Params, body: Any, now: float
    ) -> Result:
        note = self.state.notes.get(note_id)
        if note is None or note["entity_id"] != entity_id:
            return 204, None
        return self.get(entity, note_id, params, body, now)
