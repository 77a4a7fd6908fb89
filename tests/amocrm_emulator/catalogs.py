"""Account catalogs: account, users, pipelines and statuses, custom fields, tags."""

from __future__ import annotations

from typing import Any, Dict, List

from . import errors, seed
from .checks import ItemCheck
from .listing import Params, Result, Routes, body_array, bracket_values, first, with_values
from .validation import FIELD_TYPES


class Catalogs(Routes):
    # --- account and users ---------------------------------------------------
    def account(self, params: Params, body: Any, now: float) -> Result:
        data = dict(self.state.account)
        extras = with_values(params)
        if "is_api_filter_enabled" in extras:
            data["is_api_filter_enabled"] = True
        if "datetime_settings" in extras:
            data["datetime_settings"] = {
                "timezone": "Europe/Moscow",
                "timezone_offset": "+03:00",
                "date_pattern": "d.m.Y H:i",
                "short_date_pattern": "d.m.Y",
            }
        if "amojo_id" in extras:
            data["amojo_id"] = "0b6b5ad5-6d9d-4bd0-a8d1-b0b9ad2ec1a5"
        if "version" in extras:
            data["version"] = 14
        data["_links"] = {"self": {"href": f"{self.base}/api/v4/account"}}
        embedded = {}
        if "task_types" in extras:
            embedded["task_types"] = [dict(t) for t in self.state.task_types.values()]
        if "users_groups" in extras:
            embedded["users_groups"] = [dict(g) for g in seed.USERS_GROUPS]
        if embedded:
            data["_embedded"] = embedded
        return 200, data

    def _user(self, user: Dict[str, Any]) -> Dict[str, Any]:
        return dict(user, _links={"self": {"href": f"{self.base}/api/v4/users/{user['id']}"}})

    def users(self, params: Params, body: Any, now: float) -> Result:
        page, limit = self.lister.paging(params, 250)
        users = sorted(self.state.users.values(), key=lambda u: u["id"])
        status, out = self.lister.page(
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
        page, limit = self.lister.paging(params, 50)
        types = set(bracket_values(params, "filter[type]"))
        fields = [f for f in self.state.custom_fields[entity].values() if not types or f["type"] in types]
        fields.sort(key=lambda f: (f["sort"], f["id"]))
        return self.lister.page(
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
        items = body_array(body)
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

    FIELD_EDITABLE = ("id", "name", "sort", "is_api_only", "request_id")

    def custom_fields_patch(self, entity: str, params: Params, body: Any, now: float) -> Result:
        """PATCH {entity}/custom_fields: [{id, name?, sort?, is_api_only?}] (the SDK's updateOne/update)."""
        return self._edit_fields(entity, body_array(body), None)

    def custom_field_patch(self, entity: str, fid: int, params: Params, body: Any, now: float) -> Result:
        return self._edit_fields(entity, [body], fid)

    def _edit_fields(self, entity: str, items: List[Any], fixed_id: Any) -> Result:
        fields = self.state.custom_fields[entity]
        invalid = []
        for n, item in enumerate(items):
            check = ItemCheck()
            where = "" if fixed_id is not None else f"{n}."
            if not isinstance(item, dict):
                check.invalid_type(str(n), "object")
            else:
                fid = fixed_id if fixed_id is not None else item.get("id")
                if not isinstance(fid, int) or fid not in fields:
                    check.add("NotSupportedChoice", f"{where}id")
                for key in item:
                    if key not in self.FIELD_EDITABLE:
                        check.add("FieldNotExpected", f"{where}{key}")
                if "name" in item and (not isinstance(item["name"], str) or not item["name"].strip()):
                    check.invalid_type(f"{where}name", "string")
                if "is_api_only" in item and not isinstance(item["is_api_only"], bool):
                    check.invalid_type(f"{where}is_api_only", "boolean")
                if "sort" in item and not isinstance(item["sort"], int):
                    check.invalid_type(f"{where}sort", "int")
            if check.errors:
                rid = item.get("request_id") if isinstance(item, dict) else None
                invalid.append({"request_id": str(rid if rid is not None else n), "errors": check.errors})
        if invalid:
            raise errors.validation_failed(invalid)
        edited = []
        for item in items:
            cfield = fields[fixed_id if fixed_id is not None else item["id"]]
            for key in ("name", "sort", "is_api_only"):
                if key in item:
                    cfield[key] = item[key].strip() if key == "name" else item[key]
            edited.append(self._field_out(entity, cfield))
        if fixed_id is not None:
            return 200, edited[0]
        return 200, {"_total_items": len(edited), "_embedded": {"custom_fields": edited}}

    # --- tags -----------------------------------------------------------------
    def tags(self, entity: str, params: Params, body: Any, now: float) -> Result:
        page, limit = self.lister.paging(params, 250)
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
        return self.lister.page("tags", f"/api/v4/{entity}/tags", params, tags, page, limit, dict)

    def tags_create(self, entity: str, params: Params, body: Any, now: float) -> Result:
        items = body_array(body)
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
            # The create answer carries no color (reference §6); reads do.
            out.append({"id": tag["id"], "name": tag["name"], "request_id": str(item.get("request_id", n))})
        return 200, {"_total_items": len(out), "_embedded": {"tags": out}}
