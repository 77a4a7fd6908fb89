"""Pure helpers of batch writes: chunking, correlating answers, attributing 400s to items, progress."""

from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..errors import ItemIssue
from ..ports import BatchOutcome
from .models import ProblemBody

JsonDict = Dict[str, Any]
DEFAULT_CHUNK = 50
MAX_CHUNK = 250
ENTITIES = ("contacts", "companies", "leads")


def chunks(items: Sequence[Any], size: int) -> Iterator[List[Any]]:
    size = max(1, min(size, MAX_CHUNK))
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def check_items(method: str, items: Sequence[JsonDict]) -> None:
    """Every item has a unique string ``request_id``; PATCH items also an integer ``id``."""
    seen = set()
    for n, item in enumerate(items):
        rid = item.get("request_id")
        if not isinstance(rid, str) or not rid:
            raise ValueError(f"item {n} has no string request_id")
        if rid in seen:
            raise ValueError(f"request_id {rid!r} appears twice in one batch")
        seen.add(rid)
        if method == "PATCH" and not isinstance(item.get("id"), int):
            raise ValueError(f"update item {rid!r} has no integer id")


def _owner(key: Any, pending: Sequence[JsonDict], by_id: bool) -> Optional[str]:
    """The request_id an error entry refers to: our request_id, an entity id (PATCH) or an index."""
    text = str(key) if key is not None else ""
    if not text:
        return None
    for item in pending:
        if item["request_id"] == text:
            return text
    if by_id:
        for item in pending:
            if str(item.get("id")) == text:
                return str(item["request_id"])
    if text.isdigit() and int(text) < len(pending):
        return str(pending[int(text)]["request_id"])
    return None


def attribute_issues(problem: ProblemBody, pending: Sequence[JsonDict], *,
                     by_id: bool) -> Tuple[Dict[str, List[ItemIssue]], bool]:
    """request_id -> issues for a 400 body; the flag is False if some error names no item of ours."""
    found: Dict[str, List[ItemIssue]] = {}
    complete = True
    for entry in problem.validation_errors:
        rid = _owner(entry.request_id, pending, by_id)
        if rid is None:
            complete = False
            continue
        for err in entry.errors or []:
            found.setdefault(rid, []).append(ItemIssue(rid, err.path, err.code, err.detail))
        if not entry.errors:
            found.setdefault(rid, []).append(ItemIssue(rid, "", "", problem.detail or "refused"))
    if isinstance(problem.errors, Mapping):
        for key, message in problem.errors.items():
            rid = _owner(key, pending, by_id)
            if rid is None:
                complete = False
                continue
            found.setdefault(rid, []).append(ItemIssue(rid, "", "", str(message)))
    return found, complete and bool(found)


# where amoCRM says a custom field id is not one of the account's (the field was deleted)
_FIELD_ID_PATH = re.compile(r"custom_fields_values\.(\d+)\.field_id")
NOT_A_CHOICE = "NotSupportedChoice"


def unknown_field_ids(item: JsonDict, issues: Sequence[ItemIssue]) -> FrozenSet[int]:
    """The custom field ids of ``item`` amoCRM refused as none of the account's: a field deleted
    in amoCRM since its id was read (the module sends no other)."""
    fields = item.get("custom_fields_values") or []
    found = set()
    for issue in issues:
        match = _FIELD_ID_PATH.fullmatch(issue.path)
        if match is None or issue.code != NOT_A_CHOICE or int(match.group(1)) >= len(fields):
            continue
        field_id = fields[int(match.group(1))].get("field_id")
        if isinstance(field_id, int):
            found.add(field_id)
    return frozenset(found)


def owner_refused(issues: Sequence[ItemIssue]) -> bool:
    """amoCRM refused the item's responsible user as none it takes: a user deactivated (or
    removed) since, whether the item named it (a create) or the entity has it (a PATCH of
    an entity a deactivated user owns is refused until someone active owns it)."""
    return any(i.code == NOT_A_CHOICE and i.path == "responsible_user_id" for i in issues)


def describe(entity: str, issues: Sequence[ItemIssue]) -> str:
    """One line a person can act on: entity, item, field, amoCRM's words."""
    rid = issues[0].request_id if issues else "?"
    return f"amoCRM refused {entity} item {rid}: " + "; ".join(i.describe() for i in issues)


def describe_link(action: str, entity: str, item: JsonDict, issues: Sequence[ItemIssue]) -> str:
    """One line for a refused link: which entities, amoCRM's words."""
    what = (f"{entity} {item.get('entity_id')} to {item.get('to_entity_type')} "
            f"{item.get('to_entity_id')}")
    return f"amoCRM refused to {action} {what}: " + "; ".join(i.describe() for i in issues)


def accepted_ids(entity: str, pending: Sequence[JsonDict], data: Any, *, by_id: bool) -> Dict[str, int]:
    """request_id -> amoCRM id from a 2xx write answer (request_id echo, else id for PATCH)."""
    rows: List[Any] = []
    if isinstance(data, dict):
        embedded = data.get("_embedded") or {}
        rows = embedded.get(entity) or []
    elif isinstance(data, list):
        rows = data
    out: Dict[str, int] = {}
    wanted = {str(i["request_id"]) for i in pending}
    by_entity_id = {i.get("id"): str(i["request_id"]) for i in pending} if by_id else {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), int):
            continue
        rid = row.get("request_id")
        rid = rid[0] if isinstance(rid, list) and rid else rid
        if isinstance(rid, (str, int)) and str(rid) in wanted:
            out[str(rid)] = row["id"]
        elif by_id and row["id"] in by_entity_id:
            out[by_entity_id[row["id"]]] = row["id"]
    return out


class BatchProgress:
    """What one logical batch write got so far, over its chunks (``ports.BatchOutcome`` at the end)."""

    def __init__(self) -> None:
        self.ids: Dict[str, int] = {}
        self.rejected: Dict[str, str] = {}
        self.missing: List[str] = []
        self.unknown_fields: Dict[str, FrozenSet[int]] = {}
        self.owner_refused: List[str] = []

    def outcome(self) -> BatchOutcome:
        return BatchOutcome(ids=dict(self.ids), rejected=dict(self.rejected), missing=tuple(self.missing),
                            unknown_fields=dict(self.unknown_fields),
                            owner_refused=frozenset(self.owner_refused))


def check_entity(entity: str) -> None:
    if entity not in ENTITIES:
        raise ValueError(f"unknown amoCRM entity {entity!r}; expected one of {', '.join(ENTITIES)}")
