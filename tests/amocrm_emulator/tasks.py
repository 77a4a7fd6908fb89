"""Tasks (amoCRM "задачи", tasks API).

Routes::

    POST  /api/v4/tasks        [{text, complete_till, entity_id?, entity_type?, task_type_id?,
                                 responsible_user_id?, duration?, is_completed?, result?, request_id?}]
    PATCH /api/v4/tasks        [{id, ...}]         PATCH /api/v4/tasks/{id}   {...}
    GET   /api/v4/tasks        filter[id][], filter[responsible_user_id][], filter[is_completed] (0|1),
                               filter[task_type][] (or task_type_id), filter[entity_type],
                               filter[entity_id][] (with entity_type), filter[created_by][],
                               filter[updated_at] (or [from]/[to]), order[complete_till|created_at|id]
    GET   /api/v4/tasks/{id}

Read shape: ``id, created_by, updated_by, created_at, updated_at, responsible_user_id,
group_id, entity_id, entity_type, is_completed, task_type_id, text, duration, complete_till,
result, account_id, _links``; ``result`` is ``[]`` until a result is set, then ``{"text"}``.
A create answers ``{id, request_id, _links}`` per task, a batch PATCH ``{id, updated_at,
request_id, _links}``, a single PATCH ``{id, updated_at, _links}``. Complete a task with
``{"is_completed": true, "result": {"text": "..."}}``. An open task keeps its entity's
``closest_task_at`` (the earliest ``complete_till`` of its open tasks).
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from . import errors, seed
from .checks import (
    NOT_BLANK,
    NOT_EXPECTED,
    NOT_SUPPORTED,
    Checked,
    ItemCheck,
    batch_items,
    check_all,
    check_users,
    int_fields,
    patch_target,
    request_id_of,
    required_text,
    unexpected_keys,
)
from .listing import (
    Lister,
    Params,
    Result,
    Routes,
    bracket_values,
    first,
    in_range,
    int_values,
    ordered,
    time_range,
)
from .state import State

# Customers are off in the emulated account (customers_mode "disabled"), so tasks attach to these.
TASK_ENTITY_TYPES = ("leads", "contacts", "companies")
WRITE_KEYS = frozenset(
    {
        "text",
        "complete_till",
        "entity_id",
        "entity_type",
        "responsible_user_id",
        "task_type_id",
        "duration",
        "is_completed",
        "result",
        "created_by",
        "updated_by",
        "created_at",
        "updated_at",
        "request_id",
        "id",  # the target of a PATCH; ignored on create
    }
)
INT_KEYS = (
    "complete_till",
    "entity_id",
    "task_type_id",
    "duration",
    "responsible_user_id",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
)
EntityKey = Tuple[str, int]
Task = Dict[str, Any]


class TaskItem(NamedTuple):
    """One checked item of a write: what to change, and for a PATCH on which task."""

    request_id: str
    target_id: Optional[int]
    current: Optional[Task]
    changes: Dict[str, Any]
    skip: bool  # PATCH of a deleted task in deleted_patch_mode "ignore"


class Tasks(Routes):
    def __init__(self, state: State, lister: Lister, base: str) -> None:
        super().__init__(state, lister, base)
        self._by_entity: Dict[EntityKey, List[int]] = {}
        for task in state.tasks.values():
            self._index(task, None)

    def _key(self, task: Dict[str, Any]) -> Optional[EntityKey]:
        return None if task["entity_type"] is None else (task["entity_type"], task["entity_id"])

    def _index(self, task: Dict[str, Any], old: Optional[EntityKey]) -> None:
        """Keep the per-entity index after a task was stored (``old`` None) or moved."""
        new = self._key(task)
        if old is not None and old != new:
            self._by_entity[old].remove(task["id"])
        if new is not None and (old is None or old != new):
            self._by_entity.setdefault(new, []).append(task["id"])

    def _refresh_closest(self, key: Optional[EntityKey]) -> None:
        """The entity's ``closest_task_at``: the earliest deadline of its open tasks."""
        if key is None:
            return
        record = self.state.entities.get(key[0], {}).get(key[1])
        if record is None:
            return
        tasks = (self.state.tasks[i] for i in self._by_entity.get(key, ()))
        open_tills = [t["complete_till"] for t in tasks if not t["is_completed"] and not t["_deleted"]]
        record["closest_task_at"] = min(open_tills) if open_tills else None

    # --- validation ------------------------------------------------------------
    def _checked(self, items: List[Any], mode: str) -> List[TaskItem]:
        """Every item of a ``create`` or ``update`` batch, checked; a 400 if any is wrong."""

        def validate(item: Any, index: int, check: ItemCheck) -> Checked[TaskItem]:
            checked = self._validate(item, index, mode, check)
            business_key = None if checked.target_id is None else str(checked.target_id)
            return checked.request_id, business_key, checked

        return check_all(items, validate)

    def _validate(self, item: Any, index: int, mode: str, check: ItemCheck) -> TaskItem:
        if not isinstance(item, dict):
            check.invalid_type(str(index), "object")
            return TaskItem(str(index), None, None, {}, False)
        rid = request_id_of(item, index, check)
        unexpected_keys(item, WRITE_KEYS, check)
        target_id, current, skip = None, None, False
        if mode == "update":
            target_id, current, skip = patch_target(
                item, self.state.tasks, self._visible, self.state.deleted_patch_mode, check
            )
            if skip or check.errors or check.business:
                return TaskItem(rid, target_id, current, {}, skip)
        changes: Dict[str, Any] = int_fields(item, INT_KEYS, check)
        if mode == "create" or "text" in item:
            text = required_text(item, "text", check, "text")
            if text is not None:
                changes["text"] = text
        if mode == "create" and item.get("complete_till") is None:
            check.add(NOT_BLANK, "complete_till")
        self._check_entity(item, changes, current, check)
        if "task_type_id" in changes and changes["task_type_id"] not in self.state.task_types:
            check.add(NOT_SUPPORTED, "task_type_id")
        if changes.get("duration", 0) < 0:
            check.add(NOT_SUPPORTED, "duration")
        self._check_completion(item, changes, current, check)
        check_users(self.state, changes, check)
        return TaskItem(rid, target_id, current, changes, False)

    def _check_entity(
        self, item: Dict[str, Any], changes: Dict[str, Any], current: Optional[Task], check: ItemCheck
    ) -> None:
        if "entity_type" in item:
            if item["entity_type"] in TASK_ENTITY_TYPES:
                changes["entity_type"] = item["entity_type"]
            else:
                check.add(NOT_SUPPORTED, "entity_type")
                return
        if "entity_type" not in item and "entity_id" not in item:
            return
        entity_type = changes.get("entity_type", (current or {}).get("entity_type"))
        entity_id = changes.get("entity_id", (current or {}).get("entity_id"))
        if entity_type is None:
            check.add(NOT_BLANK, "entity_type")
        elif entity_id is None:
            check.add(NOT_BLANK, "entity_id")
        elif self.state.live(entity_type, entity_id) is None:
            check.add(NOT_SUPPORTED, "entity_id")  # unknown, or deleted in the UI

    @staticmethod
    def _check_completion(
        item: Dict[str, Any], changes: Dict[str, Any], current: Optional[Task], check: ItemCheck
    ) -> None:
        if "is_completed" in item:
            if isinstance(item["is_completed"], bool):
                changes["is_completed"] = item["is_completed"]
            else:
                check.invalid_type("is_completed", "bool")
        if "result" not in item:
            return
        result = item["result"]
        if not isinstance(result, dict) or not isinstance(result.get("text"), str):
            check.invalid_type("result", "object")
            return
        unexpected_keys(result, ("text",), check, "result.")
        completed = changes.get("is_completed", bool(current and current["is_completed"]))
        if not completed:
            check.add(NOT_EXPECTED, "result", "A result can be given only to a completed task.")
            return
        changes["result"] = {"text": result["text"]}

    # --- writes ----------------------------------------------------------------
    def create(self, params: Params, body: Any, now: float) -> Result:
        out = []
        for checked in self._checked(batch_items(body), "create"):
            task = self._store(checked.changes, now)
            out.append({"id": task["id"], "request_id": checked.request_id, "_links": self._link(task)})
        return 200, {"_links": {"self": {"href": f"{self.base}/api/v4/tasks"}}, "_embedded": {"tasks": out}}

    def _store(self, changes: Dict[str, Any], now: float) -> Dict[str, Any]:
        user = self.state.account["current_user_id"]
        stamp = changes.get("created_at", int(now))
        task: Dict[str, Any] = {
            "id": self.state.new_id("task"),
            "created_by": user,
            "updated_by": user,
            "created_at": stamp,
            "updated_at": stamp,
            "responsible_user_id": user,
            "group_id": 0,
            "entity_id": None,
            "entity_type": None,
            "is_completed": False,
            "task_type_id": seed.CALL_TASK_TYPE,
            "text": "",
            "duration": 0,
            "complete_till": 0,
            "result": None,
            "account_id": self.state.account["id"],
            "_deleted": False,
        }
        task.update(changes)
        self.state.tasks[task["id"]] = task
        self._index(task, None)
        self._refresh_closest(self._key(task))
        return task

    def _update(self, task: Dict[str, Any], changes: Dict[str, Any], now: float) -> None:
        old = self._key(task)
        changes.setdefault("updated_at", int(now))
        changes.setdefault("updated_by", self.state.account["current_user_id"])
        task.update(changes)
        self._index(task, old)
        self._refresh_closest(old)
        if self._key(task) != old:
            self._refresh_closest(self._key(task))

    def _patch(self, items: List[Any], now: float) -> List[Tuple[str, Task]]:
        done = []
        for checked in self._checked(items, "update"):
            task = self.state.tasks[checked.target_id]  # type: ignore[index]
            if not checked.skip:
                self._update(task, checked.changes, now)
            done.append((checked.request_id, task))
        return done

    def patch(self, params: Params, body: Any, now: float) -> Result:
        out = [
            {"id": t["id"], "updated_at": t["updated_at"], "request_id": rid, "_links": self._link(t)}
            for rid, t in self._patch(batch_items(body), now)
        ]
        return 200, {"_links": {"self": {"href": f"{self.base}/api/v4/tasks"}}, "_embedded": {"tasks": out}}

    def patch_one(self, task_id: int, params: Params, body: Any, now: float) -> Result:
        if not isinstance(body, dict):
            raise errors.bad_request("Request body must be a JSON object")
        [(_, task)] = self._patch([dict(body, id=task_id)], now)
        return 200, {"id": task["id"], "updated_at": task["updated_at"], "_links": self._link(task)}

    def mark_deleted(self, task_id: int) -> bool:
        task = self.state.tasks.get(task_id)
        if task is None:
            return False
        task["_deleted"] = True
        self._refresh_closest(self._key(task))
        return True

    # --- reads -----------------------------------------------------------------
    def _visible(self, task: Dict[str, Any]) -> bool:
        if task["_deleted"]:
            return False
        entity_type = task["entity_type"]
        return entity_type is None or self.state.live(entity_type, task["entity_id"]) is not None

    def _link(self, task: Dict[str, Any]) -> Dict[str, Any]:
        return {"self": {"href": f"{self.base}/api/v4/tasks/{task['id']}"}}

    def render(self, task: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in task.items() if not k.startswith("_")}
        out["result"] = dict(task["result"]) if task["result"] else []  # [] when empty, as amoCRM
        out["_links"] = self._link(task)
        return out

    def get(self, task_id: int, params: Params, body: Any, now: float) -> Result:
        task = self.state.tasks.get(task_id)
        if task is None or not self._visible(task):
            return 204, None
        return 200, self.render(task)

    def list(self, params: Params, body: Any, now: float) -> Result:
        entity_types = set(bracket_values(params, "filter[entity_type]"))
        entity_ids = int_values(params, "filter[entity_id]")
        if len(entity_types) == 1 and entity_ids:  # filter[entity_id] needs filter[entity_type]
            [entity_type] = entity_types
            keys = [(entity_type, e) for e in entity_ids]
            candidates = [self.state.tasks[i] for key in keys for i in self._by_entity.get(key, ())]
        else:
            candidates = list(self.state.tasks.values())
        ids = set(int_values(params, "filter[id]"))
        users = set(int_values(params, "filter[responsible_user_id]"))
        creators = set(int_values(params, "filter[created_by]"))
        types = set(int_values(params, "filter[task_type]") + int_values(params, "filter[task_type_id]"))
        completed = _flag(first(params, "filter[is_completed]"))
        updated = time_range(params, "updated_at")
        tasks = [
            t
            for t in candidates
            if self._visible(t)
            and (not ids or t["id"] in ids)
            and (not users or t["responsible_user_id"] in users)
            and (not creators or t["created_by"] in creators)
            and (not types or t["task_type_id"] in types)
            and (not entity_types or t["entity_type"] in entity_types)
            and (completed is None or t["is_completed"] == completed)
            and in_range(t["updated_at"], updated)
        ]
        tasks = ordered(tasks, params, ("complete_till", "created_at", "id"))
        return self.lister.listing("tasks", "/api/v4/tasks", params, tasks, self.render)


def _flag(value: Optional[str]) -> Optional[bool]:
    if value is None or value == "":
        return None
    return value.lower() in ("1", "true")
