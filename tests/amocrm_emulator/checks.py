"""The pieces every batch write validates with, and the two 400 shapes they end in.

A batch is validated whole before anything is written: each item's problems go into an
:class:`ItemCheck`; structural ones become ``validation-errors`` items (``request_id`` +
``errors[{code, path, detail}]``, paths relative to the item), business rules the
``errors{<id or request_id>: message}`` shape (reference §4.4, §8). Used by entities,
notes and tasks alike.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

from . import errors
from .state import State

NOT_SUPPORTED = "NotSupportedChoice"
NOT_EXPECTED = "FieldNotExpected"
INVALID_TYPE = "InvalidType"
NOT_FOUND = "NotFound"
NOT_BLANK = "NotBlank"
DETAILS = {
    NOT_SUPPORTED: "The value you selected is not a valid choice.",
    NOT_EXPECTED: "This field was not expected.",
    NOT_FOUND: "Entity not found or was deleted.",
    NOT_BLANK: "This value should not be blank.",
}
USER_FIELDS = ("responsible_user_id", "created_by", "updated_by")
MAX_BATCH = 250


class ItemCheck:
    """Errors collected for one item."""

    def __init__(self) -> None:
        self.errors: List[Dict[str, str]] = []
        self.business: Optional[str] = None

    def add(self, code: str, path: str, detail: Optional[str] = None) -> None:
        self.errors.append({"code": code, "path": path, "detail": detail or DETAILS.get(code, code)})

    def invalid_type(self, path: str, expected: str) -> None:
        self.add(INVALID_TYPE, path, f"This value should be of type {expected}.")


class Problems:
    """Checks of a whole batch; ``raise_any`` answers the first shape that applies."""

    def __init__(self) -> None:
        self.invalid: List[Dict[str, Any]] = []
        self.business: Dict[str, str] = {}

    def add(self, request_id: str, check: ItemCheck, business_key: Optional[str] = None) -> None:
        if check.errors:
            self.invalid.append({"request_id": request_id, "errors": check.errors})
        elif check.business:
            self.business[business_key or request_id] = check.business

    def raise_any(self) -> None:
        if self.invalid:
            raise errors.validation_failed(self.invalid)
        if self.business:
            raise errors.invalid_body(self.business)


T = TypeVar("T")
# (request_id, business-rule key or None for the request_id, the checked item)
Checked = Tuple[str, Optional[str], T]


def check_all(items: List[Any], validate: Callable[[Any, int, ItemCheck], Checked[T]]) -> List[T]:
    """Validate every item of a batch; raise the 400 if any is wrong, else the checked items."""
    problems = Problems()
    checked: List[T] = []
    for index, item in enumerate(items):
        check = ItemCheck()
        request_id, business_key, value = validate(item, index, check)
        problems.add(request_id, check, business_key)
        checked.append(value)
    problems.raise_any()
    return checked


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def batch_items(items: Any) -> List[Any]:
    """The body of a batch write: a non-empty array of at most 250 items."""
    if not isinstance(items, list):
        raise errors.bad_request("Request body must be a JSON array")
    if not items:
        raise errors.bad_request("Request body must not be empty")
    if len(items) > MAX_BATCH:
        detail = f"Maximum {MAX_BATCH} entities per request."
        raise errors.validation_failed(
            [{"request_id": "0", "errors": [{"code": "TooManyElements", "path": "", "detail": detail}]}]
        )
    return items


def request_id_of(item: Dict[str, Any], index: int, check: ItemCheck, prefix: str = "") -> str:
    """The item's ``request_id`` (a string, echoed unchanged), else its index."""
    rid = item.get("request_id")
    if rid is None:
        return str(index)
    if isinstance(rid, str):
        return rid
    check.invalid_type(prefix + "request_id", "string")
    return str(index)


def unexpected_keys(item: Dict[str, Any], allowed: Iterable[str], check: ItemCheck, prefix: str = "") -> None:
    allowed = set(allowed)
    for key in item:
        if key not in allowed:
            check.add(NOT_EXPECTED, prefix + key)


def int_fields(
    item: Dict[str, Any], keys: Iterable[str], check: ItemCheck, prefix: str = ""
) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for key in keys:
        if key not in item:
            continue
        if is_int(item[key]):
            out[key] = item[key]
        else:
            check.invalid_type(prefix + key, "int")
    return out


def check_users(state: State, scalars: Dict[str, Any], check: ItemCheck, prefix: str = "") -> None:
    """An unknown or deactivated user as responsible/creator/editor → NotSupportedChoice
    (0 stands for "robot" as creator or editor)."""
    for key in USER_FIELDS:
        value = scalars.get(key)
        if value is None or (value == 0 and key != "responsible_user_id"):
            continue
        if not state.user_active(value):
            check.add(NOT_SUPPORTED, prefix + key)


def required_text(item: Dict[str, Any], key: str, check: ItemCheck, path: str) -> Optional[str]:
    """A non-blank string at ``key``: missing or blank → NotBlank, not a string → InvalidType."""
    value = item.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        check.add(NOT_BLANK, path)
        return None
    if not isinstance(value, str):
        check.invalid_type(path, "string")
        return None
    return value


def patch_target(
    item: Dict[str, Any],
    table: Dict[int, Dict[str, Any]],
    is_live: Callable[[Dict[str, Any]], bool],
    mode: str,
    check: ItemCheck,
    prefix: str = "",
) -> Tuple[Optional[int], Optional[Dict[str, Any]], bool]:
    """The record a PATCH item names by ``id``: ``(id, live record, skip)``.

    A UI-deleted (or unknown) id is answered as ``mode`` says (state.DELETED_PATCH_MODES, an
    open question; see the README): ``validation`` → NotFound at ``id``, ``errors`` → the
    business shape, ``ignore`` → skip the item silently (only if the record exists)."""
    target_id = item.get("id")
    if target_id is None:
        check.add(NOT_BLANK, prefix + "id")
        return None, None, False
    if not is_int(target_id):
        check.invalid_type(prefix + "id", "int")
        return None, None, False
    record = table.get(target_id)
    if record is not None and is_live(record):
        return target_id, record, False
    if mode == "ignore" and record is not None:
        return target_id, None, True
    if mode == "errors":
        check.business = "Entity not found"
    else:
        check.add(NOT_FOUND, prefix + "id")
    return target_id, None, False
