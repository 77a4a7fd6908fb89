"""The ``/api/v4`` routes: parse, validate, apply, render. HTTP plumbing lives in server.py.

Every handler returns ``(status, body)``; errors are raised as ``ApiError``. The
caller holds the state lock, so a handler sees and changes the state atomically.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from . import errors, seed
from .entities import Store, bracket_values, first
from .state import ENTITY_TYPES, State
from .validation import FIELD_TYPES, ItemCheck, Plan, validate_batch, validate_item

Result = Tuple[int, Any]
Params = Dict[str, List[str]]
ENTITY = "(contacts|companies|leads)"


class Api:
    def __init__(self, state: State, store: Store, base: str) -> None:
        self.state = state
        self.store = store
        self.base = base
        self.routes: List[Tuple[str, Any, Callable[..., Result]]] = []
        r = self._route
        r("GET", r"account", self.account)
        r("GET", r"users", self.users)
        r("GET", r"users/(\d+)", self.user)
        r("GET", r"leads/pipelines", self.pipelines)
        r("GET", r"leads/pipelines/(\d+)", self.pipeline)
        r("GET", r"leads/pipelines/(\d+)/statuses", self.statuses)
        r("GET", r"leads/pipelines/(\d+)/statuses/(\d+)", self.status)
        r("POST", r"leads/complex", self.complex_create)
        r("GET", ENTITY + r"/custom_fields", self.custom_fields)
        r("POST", ENTITY + r"/custom_fields", self.custom_fields_create)
        r("GET", ENTITY + r"/custom_fields/(\d+)", self.custom_field)
        r("GET", ENTITY + r"/tags", self.tags)
        r("POST", ENTITY + r"/tags", self.tags_create)
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

    # --- helpers -----------------------------------------------------------
    def _paging(self, params: Params, max_limit: int, default_limit: int = 50) -> Tuple[int, int]:
        page_raw, limit_raw = first(params, "page") or "1", first(params, "limit") or str(default_limit)
        problems = []
        page = limit = 0
        try:
            page = int(page_raw)
        except ValueError:
            problems.append(("page", "This value should be of type int."))
        try:
            limit = int(limit_raw)
        except ValueError:
            problems.append(("limit", "This value should be of type int."))
        if not problems and page < 1:
            problems.append(("page", "This value should be greater than or equal to 1."))
        if not problems and not 1 <= limit <= max_limit:
            problems.append(("limit", f"This value should be between 1 and {max_limit}."))
        if problems:
            raise errors.validation_failed(
                [
                    {
                        "request_id": "0",
                        "errors": [{"code": "InvalidValue", "path": p, "detail": d} for p, d in problems],
                    }
                ]
            )
        return page, limit

    def _href(self, path: str, params: Params, page: int, limit: int) -> Dict[str, str]:
        # Keep the caller's filters so that following `next` continues the same listing.
        pairs = [(k, v) for k, vs in params.items() if k not in ("page", "limit") for v in vs]
        pairs += [("page", str(page)), ("limit", str(limit))]
        return {"href": f"{self.base}{path}?{urlencode(pairs)}"}

    def _page(
        self,
        key: str,
        path: str,
        params: Params,
        records: List[Any],
        page: int,
        limit: int,
        render: Callable[[Any], Any],
        totals: bool = False,
    ) -> Result:
        start = (page - 1) * limit
        chunk = records[start : start + limit]
        if not chunk:
            return 204, None
        links = {"self": self._href(path, params, page, limit)}
        if start + limit < len(records):
            links["next"] = self._href(path, params, page + 1, limit)
        body: Dict[str, Any] = {"_page": page}
        if totals:
            page_count = max(1, math.ceil(len(records) / limit))
            links["last"] = self._href(path, params, page_count, limit)
            body = {"_total_items": len(records), "_page": page, "_page_count": page_count}
        body["_links"] = links
        body["_embedded"] = {key: [render(x) for x in chunk]}
        return 200, body

    @staticmethod
    def _with(params: Params) -> List[str]:
        return [w.strip() for v in params.get("with", []) for w in v.split(",") if w.strip()]

    # --- account and users ---------------------------------------------------
    def account(self, params: Params, body: Any, now: float) -> Result:
        data = dict(self.state.account)
        extras = self._with(params)
        if "is_api_filter_enabled" in extras:
            data["is_api_filter_enabled"] = True
        if "datetime_settings" in extras:
            data["datetime_settings"] = {
                "timezone": "Europe/Moscow",
                "timezone_offset": "+03:00",
                "date_pattern": "d.m.Y H:i",
                "short_date_pattern": "d.m.Y",
            }
        data["_links"] = {"self": {"href": f"{self.base}/api/v4/account"}}
        return 200, data

    def _user(self, user: Dict[str, Any]) -> Dict[str, Any]:
        return dict(user, _links={"self": {"href": f"{self.base}/api/v4/users/{user['id']}"}})

    def users(self, params: Params, body: Any, now: float) -> Result:
        page, limit = self._paging(params, 250)
        users = sorted(self.state.users.values(), key=lambda u: u["id"])
        status, out = self._page(
            "users", "/api/v4/users", params, users, page, limit, self._user, totals=True
        )
        return status, out

    def user(self, user_id: int, params: Params, body: Any, now: float) -> Result:
        user = self.state.users.get(user_id)
        return (204, None) if user is None else (200, self._user(user))

    # --- pipelines -----------------------------------------------------------
    def _status_out(self, status: Dict[str, Any]) -> Dict[str, Any]:
        href = f"{self.base}/api/v4/leads/pipelines/{status['pipeline_id']}/statuses/{status['id']}"
        return dict(status, _links={"self": {"href": href}})

    def _pipeline_out(self, pipeline: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in pipeline.items() if k != "statuses"}
        out["_links"] = {"self": {"href": f"{self.base}/api/v4/leads/pipelines/{pipeline['id']}"}}
        out["_embedded"] = {"statuses": [self._status_out(s) for s in pipeline["statuses"]]}
        return out

    def pipelines(self, params: Params, body: Any, now: float) -> Result:
        items = [
            self._pipeline_out(p) for p in sorted(self.state.pipelines.values(), key=lambda p: p["sort"])
        ]
        return 200, {
            "_total_items": len(items),
            "_links": {"self": {"href": f"{self.base}/api/v4/leads/pipelines"}},
            "_embedded": {"pipelines": items},
        }

    def pipeline(self, pid: int, params: Params, body: Any, now: float) -> Result:
        pipeline = self.state.pipelines.get(pid)
        return (204, None) if pipeline is None else (200, self._pipeline_out(pipeline))

    def statuses(self, pid: int, params: Params, body: Any, now: float) -> Result:
        pipeline = self.state.pipelines.get(pid)
        if pipeline is None:
            return 204, None
        items = [self._status_out(s) for s in pipeline["statuses"]]
        href = f"{self.base}/api/v4/leads/pipelines/{pid}/statuses"
        return 200, {
            "_total_items": len(items),
            "_links": {"self": {"href": href}},
            "_embedded": {"statuses": items},
        }

    def status(self, pid: int, sid: int, params: Params, body: Any, now: float) -> Result:
        status = self.state.status(pid, sid)
        return (204, None) if status is None else (200, self._status_out(status))

    # --- custom fields ---------------------------------------------------------
    def _field_out(self, entity: str, cfield: Dict[str, Any]) -> Dict[str, Any]:
        href = f"{self.base}/api/v4/{entity}/custom_fields/{cfield['id']}"
        return dict(cfield, _links={"self": {"href": href}})

    def custom_fields(self, entity: str, params: Params, body: Any, now: float) -> Result:
        page, limit = self._paging(params, 50)
        types = set(bracket_values(params, "filter[type]"))
        fields = [f for f in self.state.custom_fields[entity].values() if not types or f["type"] in types]
        fields.sort(key=lambda f: (f["sort"], f["id"]))
        return self._page(
            "custom_fields",
            f"/api/v4/{entity}/custom_fields",
            params,
            fields,
            page,
            limit,
            lambda f: self._field_out(entity, f),
            totals=True,
        )

    def custom_field(self, entity: str, fid: int, params: Params, body: Any, now: float) -> Result:
        cfield = self.state.custom_fields[entity].get(fid)
        return (204, None) if cfield is None else (200, self._field_out(entity, cfield))

    def custom_fields_create(self, entity: str, params: Params, body: Any, now: float) -> Result:
        items = self._array(body)
        invalid = []
        for n, item in enumerate(items):
            check = ItemCheck()
            if not isinstance(item, dict):
                check.invalid_type(str(n), "object")
            else:
                if not isinstance(item.get("name"), str) or not item["name"].strip():
                    check.invalid_type(f"{n}.name", "string")
                if item.get("type") not in FIELD_TYPES:
                    check.add("NotSupportedChoice", f"{n}.type")
                for key in item:
                    if key not in (
                        "name",
                        "type",
                        "code",
                        "sort",
                        "enums",
                        "is_api_only",
                        "request_id",
                        "group_id",
                        "required_statuses",
                        "remind",
                        "settings",
                    ):
                        check.add("FieldNotExpected", f"{n}.{key}")
                enums = item.get("enums")
                if enums is not None and (
                    not isinstance(enums, list)
                    or not all(isinstance(e, dict) and isinstance(e.get("value"), str) for e in enums)
                ):
                    check.invalid_type(f"{n}.enums", "array")
                code = item.get("code")
                if isinstance(code, str) and self.state.field_by_code(entity, code):
                    check.add("NotSupportedChoice", f"{n}.code", "A field with this code already exists.")
            if check.errors:
                rid = item.get("request_id") if isinstance(item, dict) else None
                invalid.append({"request_id": str(rid if rid is not None else n), "errors": check.errors})
        if invalid:
            raise errors.validation_failed(invalid)
        created = []
        for n, item in enumerate(items):
            cfield = self.state.add_custom_field(
                entity,
                item["name"].strip(),
                item["type"],
                item.get("code"),
                item.get("enums") or [],
                sort=int(item.get("sort") or 500),
                is_api_only=bool(item.get("is_api_only")),
            )
            out = self._field_out(entity, cfield)
            out["request_id"] = str(item.get("request_id", n))
            created.append(out)
        return 200, {"_total_items": len(created), "_embedded": {"custom_fields": created}}

    # --- tags -----------------------------------------------------------------
    def tags(self, entity: str, params: Params, body: Any, now: float) -> Result:
        page, limit = self._paging(params, 250)
        name = first(params, "filter[name]")
        ids = {int(i) for i in bracket_values(params, "filter[id]") if i.isdigit()}
        query = (first(params, "query") or "").lower()
        tags = [
            t
            for t in self.state.tags[entity].values()
            if (name is None or t["name"] == name)
            and (not ids or t["id"] in ids)
            and (not query or query in t["name"].lower())
        ]
        return self._page("tags", f"/api/v4/{entity}/tags", params, tags, page, limit, dict)

    def tags_create(self, entity: str, params: Params, body: Any, now: float) -> Result:
        items = self._array(body)
        invalid = []
        for n, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not item["name"].strip()
            ):
                invalid.append(
                    {
                        "request_id": str(n),
                        "errors": [
                            {
                                "code": "InvalidType",
                                "path": f"{n}.name",
                                "detail": "This value should be of type string.",
                            }
                        ],
                    }
                )
        if invalid:
            raise errors.validation_failed(invalid)
        out = []
        for n, item in enumerate(items):
            tag = self.state.ensure_tag(entity, item["name"].strip(), item.get("color"))
            out.append(dict(tag, request_id=str(item.get("request_id", n))))
        return 200, {"_total_items": len(out), "_embedded": {"tags": out}}

    # --- entities --------------------------------------------------------------
    @staticmethod
    def _array(body: Any) -> List[Any]:
        if not isinstance(body, list) or not body:
            raise errors.bad_request("Request body must be a non-empty JSON array")
        if len(body) > 250:
            raise errors.bad_request("Maximum 250 entities per request")
        return body

    def list_entities(self, entity: str, params: Params, body: Any, now: float) -> Result:
        page, limit = self._paging(params, 250)
        with_ = self._with(params)
        records = self.store.select(entity, params, with_, now)
        return self._page(
            entity,
            f"/api/v4/{entity}",
            params,
            records,
            page,
            limit,
            lambda r: self.store.render(entity, r, with_),
        )

    def get_entity(self, entity: str, entity_id: int, params: Params, body: Any, now: float) -> Result:
        record = self.state.live(entity, entity_id)
        if record is None:
            return 204, None
        return 200, self.store.render(entity, record, self._with(params))

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
    def _link_items(self, entity: str, body: Any, fixed_id: Optional[int]) -> List[Tuple[int, str, int, Any]]:
        items = self._array(body)
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
        for eid, ttype, tid, _ in self._link_items(entity, body, fixed_id):
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


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request("Request body is not valid JSON") from exc


__all__ = ["Api", "ENTITY_TYPES", "parse_json", "seed"]
