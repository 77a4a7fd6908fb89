"""The ``/api/v4`` routes: parse, validate, apply, render. HTTP plumbing lives in server.py.

Every handler returns ``(status, body)``; errors are raised as ``ApiError``. The
caller holds the state lock, so a handler sees and changes the state atomically.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import errors, seed
from .catalogs import Catalogs
from .checks import ItemCheck
from .entities import Store
from .listing import Lister, Params, Result, body_array, bracket_values, first, with_values
from .notes import Notes
from .state import ENTITY_TYPES, State
from .tasks import Tasks
from .validation import Plan, validate_batch, validate_item

ENTITY = "(contacts|companies|leads)"


class Api:
    def __init__(self, state: State, store: Store, base: str) -> None:
        self.state = state
        self.store = store
        self.base = base
        self.lister = Lister(base)
        self.routes: List[Tuple[str, Any, Callable[..., Result]]] = []
        self.catalogs = Catalogs(state, self.lister, base)
        r = self._route
        c = self.catalogs
        r("GET", r"account", c.account)
        r("GET", r"users", c.users)
        r("GET", r"users/(\d+)", c.user)
        r("GET", r"leads/pipelines", c.pipelines)
        r("GET", r"leads/pipelines/(\d+)", c.pipeline)
        r("GET", r"leads/pipelines/(\d+)/statuses", c.statuses)
        r("GET", r"leads/pipelines/(\d+)/statuses/(\d+)", c.status)
        r("GET", ENTITY + r"/custom_fields", c.custom_fields)
        r("POST", ENTITY + r"/custom_fields", c.custom_fields_create)
        r("GET", ENTITY + r"/custom_fields/(\d+)", c.custom_field)
        r("PATCH", ENTITY + r"/custom_fields", c.custom_fields_patch)
        r("PATCH", ENTITY + r"/custom_fields/(\d+)", c.custom_field_patch)
        r("GET", ENTITY + r"/tags", c.tags)
        r("POST", ENTITY + r"/tags", c.tags_create)
        r("POST", r"leads/complex", self.complex_create)
        self.notes = Notes(state, self.lister, base)
        n = self.notes
        r("GET", ENTITY + r"/notes", n.list)
        r("POST", ENTITY + r"/notes", n.create)
        r("GET", ENTITY + r"/notes/(\d+)", n.get)
        r("GET", ENTITY + r"/(\d+)/notes", n.list_for)
        r("POST", ENTITY + r"/(\d+)/notes", n.create_for)
        r("GET", ENTITY + r"/(\d+)/notes/(\d+)", n.get_for)
        self.tasks = Tasks(state, self.lister, base)
        t = self.tasks
        r("GET", r"tasks", t.list)
        r("POST", r"tasks", t.create)
        r("PATCH", r"tasks", t.patch)
        r("GET", r"tasks/(\d+)", t.get)
        r("PATCH", r"tasks/(\d+)", t.patch_one)
        r("POST", ENTITY + r"/link", self.mass_link)
        r("POST", ENTITY + r"/unlink", self.mass_unlink)
        r("GET", ENTITY + r"/links", self.mass_links)
        r("GET", ENTITY, self.list_entities)
        r("POST", ENTITY, self.create_entities)
        r("PATCH", ENTITY, self.patch_entities)
        r("GET", ENTITY + r"/(\d+)", self.get_entity)
        r("PATCH", ENTITY + r"/(\d+)", self.patch_entity)
        r("POST", ENTITY + r"/(\d+)/link", self.link)
        r("POST", ENTITY + r"/(\d+)/unlink", self.unlink)
        r("GET", ENTITY + r"/(\d+)/links", self.links)

    def mark_deleted(self, kind: str, item_id: int) -> bool:
        """A note or task deleted in the UI (control API ``POST delete``)."""
        return (self.notes if kind == "notes" else self.tasks).mark_deleted(item_id)

    def _route(self, method: str, pattern: str, handler: Callable[..., Result]) -> None:
        self.routes.append((method, re.compile(f"^/api/v4/{pattern}/?$"), handler))

    def dispatch(self, method: str, path: str, params: Params, body: Any, now: float) -> Result:
        path_matched = False
        for route_method, regex, handler in self.routes:
            match = regex.match(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                args = [int(g) if g.isdigit() else g for g in match.groups()]
                return handler(*args, params=params, body=body, now=now)
        if path_matched:
            raise errors.method_not_allowed()  # e.g. POST /api/v4/contacts/{id} (#329)
        raise errors.not_found()

    # --- entities --------------------------------------------------------------
    def list_entities(self, entity: str, params: Params, body: Any, now: float) -> Result:
        page, limit = self.lister.paging(params, 250)
        with_ = with_values(params)
        records = self.store.select(entity, params, with_, now)
        deleted_only = entity == "leads" and "only_deleted" in with_

        def render(record: Dict[str, Any]) -> Dict[str, Any]:
            if deleted_only:  # restorable deleted leads: id, updated_at, is_deleted (reference §3)
                return {"id": record["id"], "updated_at": record["updated_at"], "is_deleted": True}
            return self.store.render(entity, record, with_)

        return self.lister.page(entity, f"/api/v4/{entity}", params, records, page, limit, render)

    def get_entity(self, entity: str, entity_id: int, params: Params, body: Any, now: float) -> Result:
        record = self.state.live(entity, entity_id)
        if record is None:
            return 204, None
        return 200, self.store.render(entity, record, with_values(params))

    def _write_result(self, entity: str, record: Dict[str, Any], plan: Plan, update: bool) -> Dict[str, Any]:
        out: Dict[str, Any] = {"id": record["id"]}
        if update:
            out["updated_at"] = record["updated_at"]
        elif entity == "contacts":
            out.update({"is_deleted": False, "is_unsorted": False})
        out["request_id"] = plan.request_id
        out["_links"] = self.store.self_link(entity, record["id"])
        return out

    def create_entities(self, entity: str, params: Params, body: Any, now: float) -> Result:
        plans = validate_batch(self.state, entity, body, "create", now)
        created = [
            self._write_result(entity, self.store.create(entity, plan, now), plan, False) for plan in plans
        ]
        return 200, {
            "_links": {"self": {"href": f"{self.base}/api/v4/{entity}"}},
            "_embedded": {entity: created},
        }

    def patch_entities(self, entity: str, params: Params, body: Any, now: float) -> Result:
        plans = validate_batch(self.state, entity, body, "update", now)
        updated = [
            self._write_result(entity, self.store.update(entity, plan, now), plan, True) for plan in plans
        ]
        return 200, {
            "_links": {"self": {"href": f"{self.base}/api/v4/{entity}"}},
            "_embedded": {entity: updated},
        }

    def patch_entity(self, entity: str, entity_id: int, params: Params, body: Any, now: float) -> Result:
        if not isinstance(body, dict):
            raise errors.bad_request("Request body must be a JSON object")
        item = dict(body, id=entity_id)
        plans = validate_batch(self.state, entity, [item], "update", now)
        out = self._write_result(entity, self.store.update(entity, plans[0], now), plans[0], True)
        out.pop("request_id")
        return 200, out

    def complex_create(self, params: Params, body: Any, now: float) -> Result:
        """``/leads/complex``: each lead with at most one contact and one company, created together."""
        if not isinstance(body, list) or not body:
            raise errors.bad_request("Request body must be a non-empty JSON array")
        if len(body) > 50:
            raise errors.bad_request("Maximum 50 leads per complex request")
        jobs = []
        invalid = []
        business: Dict[str, str] = {}
        for n, raw in enumerate(body):
            lead = dict(raw) if isinstance(raw, dict) else raw
            nested: Dict[str, Any] = {}
            if isinstance(lead, dict) and isinstance(lead.get("_embedded"), dict):
                embedded = dict(lead["_embedded"])
                for kind in ("contacts", "companies"):
                    items = embedded.pop(kind, None)
                    if items:
                        nested[kind] = items
                lead["_embedded"] = embedded
            plan, check = validate_item(self.state, "leads", lead, n, "create", now)
            _complex_field_limit(lead, check, "")
            sub_plans: Dict[str, Tuple[Optional[int], Optional[Plan]]] = {}
            for kind, items in nested.items():
                path = f"_embedded.{kind}"
                if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
                    check.add("NotSupportedChoice", path, "Exactly one entity is allowed.")
                    continue
                existing = items[0].get("id")
                if existing is not None:
                    if self.state.live(kind, existing) is None:
                        check.add("NotSupportedChoice", f"{path}.0.id")
                    sub_plans[kind] = (existing, None)
                    continue
                sub, sub_check = validate_item(
                    self.state, kind, items[0], 0, "create", now, prefix=f"{path}.0."
                )
                check.errors.extend(sub_check.errors)
                _complex_field_limit(items[0], check, f"{path}.0.")
                sub_plans[kind] = (None, sub)
            if check.errors:
                invalid.append({"request_id": plan.request_id, "errors": check.errors})
            elif check.business:
                business[plan.request_id] = check.business
            jobs.append((plan, sub_plans))
        if invalid:
            raise errors.validation_failed(invalid)
        if business:
            raise errors.invalid_body(business)
        result = []
        for plan, sub_plans in jobs:
            ids: Dict[str, Optional[int]] = {"contacts": None, "companies": None}
            for kind, (existing, sub_plan) in sub_plans.items():
                ids[kind] = self.store.create(kind, sub_plan, now)["id"] if sub_plan is not None else existing
            if ids["contacts"]:
                plan.contacts.append((ids["contacts"], True))
            if ids["companies"]:
                plan.companies.append(ids["companies"])
            lead = self.store.create("leads", plan, now)
            if ids["contacts"] and ids["companies"]:
                self.state.links.link_contact_company(ids["contacts"], ids["companies"])
            result.append(
                {
                    "id": lead["id"],
                    "contact_id": ids["contacts"],
                    "company_id": ids["companies"],
                    "request_id": [plan.request_id],
                    "merged": False,
                }
            )
        return 200, result

    # --- links -----------------------------------------------------------------
    def _link_items(self, entity: str, body: Any, fixed_id: Optional[int],
                    unlinking: bool = False) -> List[Tuple[int, str, int, Any]]:
        items = body_array(body)
        invalid = []
        parsed = []
        for n, item in enumerate(items):
            check = ItemCheck()
            if not isinstance(item, dict):
                check.invalid_type(str(n), "object")
                invalid.append({"request_id": str(n), "errors": check.errors})
                continue
            eid = fixed_id if fixed_id is not None else item.get("entity_id")
            ttype, tid = item.get("to_entity_type"), item.get("to_entity_id")
            if (unlinking and isinstance(eid, int) and isinstance(tid, int)
                    and self.store.linked(entity, eid, str(ttype), tid)):
                # an existing relation can be removed even when one end was deleted in the UI
                parsed.append((eid, str(ttype), tid, item.get("metadata")))
                continue
            if not isinstance(eid, int) or self.state.live(entity, eid) is None:
                check.add("NotSupportedChoice", f"{n}.entity_id" if fixed_id is None else "id")
            if (entity, ttype) not in Store.LINKABLE:
                check.add("NotSupportedChoice", f"{n}.to_entity_type")
            elif not isinstance(tid, int) or self.state.live(str(ttype), tid) is None:
                check.add("NotSupportedChoice", f"{n}.to_entity_id")
            if check.errors:
                invalid.append({"request_id": str(n), "errors": check.errors})
            else:
                parsed.append((int(eid), str(ttype), int(tid), item.get("metadata")))  # type: ignore[arg-type]
        if invalid:
            raise errors.validation_failed(invalid)
        return parsed

    def _do_link(self, entity: str, body: Any, fixed_id: Optional[int]) -> Result:
        out = [
            self.store.link(entity, eid, ttype, tid, meta)
            for eid, ttype, tid, meta in self._link_items(entity, body, fixed_id)
        ]
        return 200, {"_total_items": len(out), "_embedded": {"links": out}}

    def _do_unlink(self, entity: str, body: Any, fixed_id: Optional[int]) -> Result:
        for eid, ttype, tid, _ in self._link_items(entity, body, fixed_id, unlinking=True):
            self.store.unlink(entity, eid, ttype, tid)
        return 204, None

    def link(self, entity: str, eid: int, params: Params, body: Any, now: float) -> Result:
        return self._do_link(entity, body, eid)

    def unlink(self, entity: str, eid: int, params: Params, body: Any, now: float) -> Result:
        return self._do_unlink(entity, body, eid)

    def mass_link(self, entity: str, params: Params, body: Any, now: float) -> Result:
        return self._do_link(entity, body, None)

    def mass_unlink(self, entity: str, params: Params, body: Any, now: float) -> Result:
        return self._do_unlink(entity, body, None)

    def _links_out(self, entity: str, ids: List[int], params: Params) -> Result:
        ttype = first(params, "filter[to_entity_type]")
        found = [
            link
            for eid in ids
            if self.state.live(entity, eid)
            for link in self.store.links_of(entity, eid)
            if ttype is None or link["to_entity_type"] == ttype
        ]
        if not found:
            return 204, None
        return 200, {
            "_total_items": len(found),
            "_links": {"self": {"href": f"{self.base}/api/v4/{entity}/links"}},
            "_embedded": {"links": found},
        }

    def links(self, entity: str, eid: int, params: Params, body: Any, now: float) -> Result:
        return self._links_out(entity, [eid], params)

    def mass_links(self, entity: str, params: Params, body: Any, now: float) -> Result:
        ids = [int(i) for i in bracket_values(params, "filter[entity_id]") if i.isdigit()]
        return self._links_out(entity, ids, params)


COMPLEX_MAX_FIELD_VALUES = 40  # per entity in /leads/complex (reference §4.1)


def _complex_field_limit(item: Any, check: ItemCheck, prefix: str) -> None:
    values = item.get("custom_fields_values") if isinstance(item, dict) else None
    if isinstance(values, list) and len(values) > COMPLEX_MAX_FIELD_VALUES:
        detail = f"Maximum {COMPLEX_MAX_FIELD_VALUES} custom field values per entity."
        check.add("TooManyElements", prefix + "custom_fields_values", detail)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request("Request body is not valid JSON") from exc


__all__ = ["Api", "ENTITY_TYPES", "parse_json", "seed"]
