"""What every ``/api/v4`` list and batch write shares: paging, HAL links, ``with``, body arrays.

Lists answer ``{"_page", "_links": {"self", "next"?}, "_embedded": {key: [...]}}`` or 204 when
the page is empty (reference §3); catalogs add ``_total_items``/``_page_count``/``_links.last``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from . import errors
from .state import State

Result = Tuple[int, Any]
Params = Dict[str, List[str]]
MAX_BATCH = 250  # entities per write (reference §4.1)


class Lister:
    def __init__(self, base: str) -> None:
        self.base = base

    def paging(self, params: Params, max_limit: int, default_limit: int = 50) -> Tuple[int, int]:
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

    def href(self, path: str, params: Params, page: int, limit: int) -> Dict[str, str]:
        # Keep the caller's filters so that following `next` continues the same listing.
        pairs = [(k, v) for k, vs in params.items() if k not in ("page", "limit") for v in vs]
        pairs += [("page", str(page)), ("limit", str(limit))]
        return {"href": f"{self.base}{path}?{urlencode(pairs)}"}

    def page(
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
        links = {"self": self.href(path, params, page, limit)}
        if start + limit < len(records):
            links["next"] = self.href(path, params, page + 1, limit)
        body: Dict[str, Any] = {"_page": page}
        if totals:
            page_count = max(1, math.ceil(len(records) / limit))
            links["last"] = self.href(path, params, page_count, limit)
            body = {"_total_items": len(records), "_page": page, "_page_count": page_count}
        body["_links"] = links
        body["_embedded"] = {key: [render(x) for x in chunk]}
        return 200, body

    def listing(
        self,
        key: str,
        path: str,
        params: Params,
        records: List[Any],
        render: Callable[[Any], Any],
        max_limit: int = 250,
    ) -> Result:
        """A paged list of ``records`` (already filtered and ordered) at ``path``."""
        page, limit = self.paging(params, max_limit)
        return self.page(key, path, params, records, page, limit, render)


class Routes:
    """A group of ``/api/v4`` handlers over the account state (catalogs, notes, tasks)."""

    def __init__(self, state: State, lister: Lister, base: str) -> None:
        self.state = state
        self.lister = lister
        self.base = base


def with_values(params: Params) -> List[str]:
    return [w.strip() for v in params.get("with", []) for w in v.split(",") if w.strip()]


def body_array(body: Any) -> List[Any]:
    if not isinstance(body, list) or not body:
        raise errors.bad_request("Request body must be a non-empty JSON array")
    if len(body) > MAX_BATCH:
        raise errors.bad_request(f"Maximum {MAX_BATCH} entities per request")
    return body


def first(params: Dict[str, List[str]], key: str) -> Optional[str]:
    values = params.get(key)
    return values[0] if values else None


def bracket_values(params: Dict[str, List[str]], key: str) -> List[str]:
    """Values of ``key``, ``key[]`` and ``key[0]``…; comma-separated lists are split."""
    out: List[str] = []
    for name, values in params.items():
        if (
            name == key
            or name == key + "[]"
            or (name.startswith(key + "[") and name[len(key) + 1 : -1].isdigit())
        ):
            for value in values:
                out.extend(v for v in value.split(",") if v != "")
    return out


def int_values(params: Dict[str, List[str]], key: str) -> List[int]:
    return [int(v) for v in bracket_values(params, key) if v.strip().lstrip("-").isdigit()]


def to_int(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def time_range(params: Dict[str, List[str]], key: str) -> Optional[Tuple[Optional[int], Optional[int]]]:
    """``filter[key][from]``/``[to]`` (inclusive), or ``filter[key]=ts``: changed at or after
    ``ts`` (the notes and tasks docs: "изменены после переданного значения"); None if absent."""
    since = to_int(first(params, f"filter[{key}]"))
    if since is not None:
        return since, None
    low, high = to_int(first(params, f"filter[{key}][from]")), to_int(first(params, f"filter[{key}][to]"))
    if low is None and high is None:
        return None
    return low, high


def ordered(records: List[Dict[str, Any]], params: Params, fields: Tuple[str, ...]) -> List[Dict[str, Any]]:
    """``records`` sorted by the first ``order[field]=asc|desc`` given (ties by id), else by id."""
    for key in fields:
        direction = first(params, f"order[{key}]")
        if direction:
            return sorted(records, key=lambda r: (r[key], r["id"]), reverse=direction.lower() == "desc")
    return sorted(records, key=lambda r: r["id"])


def in_range(value: int, bounds: Optional[Tuple[Optional[int], Optional[int]]]) -> bool:
    if bounds is None:
        return True
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)
